"""The evaluation service: d1 protocol over rollout workers, d1-compatible files, re-scorable."""

import json
import subprocess
import sys

import pytest
import yaml

from dllmrl_core.config import RunConfig
from services.evaluate import adapter_dir, main as evaluate_main
from services.launch import run as ray_run
from tests.services.conftest import run_config

pytestmark = pytest.mark.ray


def test_evaluate_a_trained_checkpoint_and_rescore_its_files(ray_session, warm_dir, tmp_path, capsys):
    cfg = run_config(warm_dir, tmp_path / "run", steps=2, rollout={"num_workers": 2})
    ray_run(RunConfig.parse(cfg), name="t-eval/")
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    assert adapter_dir(str(tmp_path / "run")).endswith("final/adapter")
    code = evaluate_main([str(tmp_path / "run.yaml"), "--checkpoint", str(tmp_path / "run"), "--gen-lengths", "24,32",
                          "--limit", "20", "--out", str(tmp_path / "eval")])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    files = sorted((tmp_path / "eval").glob("*_generations.json"))
    assert [f.name for f in files] == ["countdown_24_generations.json", "countdown_32_generations.json"]
    d1 = json.loads(files[0].read_text())
    assert len(d1["generations"]) == 20 and (d1["gen_length"], d1["diffusion_steps"], d1["block_length"]) == (24, 12, 24)
    rescored = subprocess.run([sys.executable, "-m", "dllmrl_core.cli", "score", "--task", "countdown", "--protocol",
                               "fixed", str(files[0])], capture_output=True, text=True)
    assert rescored.returncode == 0, rescored.stderr
    assert json.loads(rescored.stdout.strip().splitlines()[-1])["accuracy"] == pytest.approx(
        summary["accuracy"]["countdown"]["24"], abs=0.01)
    assert "| countdown |" in (tmp_path / "eval" / "results.md").read_text()


def test_bad_checkpoint_is_one_line(tmp_path, capsys, warm_dir):
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(run_config(warm_dir, tmp_path / "run")))
    assert evaluate_main([str(tmp_path / "run.yaml"), "--checkpoint", str(tmp_path / "nothing")]) == 2
    assert "no PEFT adapter" in capsys.readouterr().err
