"""The status token never reaches disk or logs (issue 16, item 6): not in a run's config.yaml, its
checkpoints or metrics, not in what a run prints, not in the config's repr."""

from pathlib import Path

import pytest
import yaml

from dllmrl_core.drive.config import dump_config
from dllmrl_core.drive.loop import run as loop_run
from services.settings import SystemConfig
from services.status import resolve_token
from tests.services.conftest import run_config

TOKEN = "tok-5ecret-4f1c9a"


def secret_config(model_dir, out: Path, **sections) -> SystemConfig:
    cfg = run_config(model_dir, out, steps=1, checkpoint={"save_every": 1},
                     status={"enabled": True, "host": "0.0.0.0", "token": TOKEN}, **sections)
    return SystemConfig.parse(cfg)


def files_holding(root: Path, text: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and text.encode() in p.read_bytes()]


def test_token_is_kept_in_memory_only():
    cfg = secret_config("unused", Path("unused"))
    assert resolve_token(cfg.status.host, cfg.status.token) == TOKEN  # the server still gets it
    for shown in (repr(cfg), str(cfg), repr(cfg.status), dump_config(cfg), cfg.model_dump_json()):
        assert TOKEN not in shown
    assert "token" not in yaml.safe_load(dump_config(cfg))["status"]  # left out, not a wrong value


def test_no_file_of_a_run_and_nothing_it_prints_holds_the_token(tiny_dir, tmp_path, capfd):
    out = tmp_path / "run"
    loop_run(secret_config(tiny_dir, out))
    printed = capfd.readouterr()
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert "config.yaml" in written and any(p.startswith("step-") and p.endswith("config.yaml") for p in written)
    assert files_holding(out, TOKEN) == [] and TOKEN not in printed.out + printed.err


@pytest.mark.ray
@pytest.mark.slow  # ~25 s: a Ray run; the fast test above covers the files both drivers write (DriverCore)
def test_a_ray_run_with_a_token_writes_and_prints_no_token(ray_session, tiny_dir, tmp_path, capfd):
    from ray._private.worker import global_worker

    from services.launch import run as ray_run

    out = tmp_path / "ray"
    summary = ray_run(secret_config(tiny_dir, out, placement="colocated"), name="t-secret/")
    printed = capfd.readouterr()
    assert summary["steps"] == 1 and (out / "config.yaml").is_file()
    assert files_holding(out, TOKEN) == [] and TOKEN not in printed.out + printed.err
    logs = Path(global_worker.node.get_session_dir_path()) / "logs"  # every actor's stdout and stderr
    assert logs.is_dir() and files_holding(logs, TOKEN) == []
