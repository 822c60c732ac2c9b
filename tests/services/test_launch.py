"""Which Ray cluster services.launch uses: its own local one unless told to join (RAY_ADDRESS or
--address), whatever `ray start` left on the machine; and it says which. ray.init is faked."""

from types import SimpleNamespace

import pytest
import ray

from services import launch
from services.settings import load_system_config


@pytest.fixture(scope="module")
def cfg():
    return load_system_config("configs/tiny_countdown.yaml")


@pytest.fixture()
def inits(monkeypatch):
    calls = []

    def init(address=None, **kwargs):
        calls.append((address, kwargs))
        return SimpleNamespace(address_info={"gcs_address": "10.0.0.7:6379" if address != "local" else "127.0.0.1:1"})

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    return calls


def test_without_an_address_it_starts_its_own_cluster_even_if_one_runs(cfg, inits, capsys):
    assert launch.connect(cfg) is True
    [(address, kwargs)] = inits
    assert address == "local" and kwargs["num_cpus"] >= 1 and kwargs["include_dashboard"] is False
    assert capsys.readouterr().out.startswith("ray: started a local cluster for this run (")


@pytest.mark.parametrize("env, flag", [("auto", None), ("", "auto"), ("10.0.0.7:6379", None), ("local", "auto")])
def test_it_joins_a_cluster_only_when_asked(cfg, inits, capsys, monkeypatch, env, flag):
    if env:
        monkeypatch.setenv("RAY_ADDRESS", env)
    launch.connect(cfg, flag)
    assert inits == [(flag or env, {})]
    assert capsys.readouterr().out == f"ray: joined the cluster at 10.0.0.7:6379 (address {flag or env})\n"


def test_ray_address_local_starts_a_local_cluster(cfg, inits, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "local")
    launch.connect(cfg)
    assert inits[0][0] == "local"
