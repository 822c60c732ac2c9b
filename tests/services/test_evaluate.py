"""The evaluation service: d1 protocol over rollout workers, d1-compatible files, re-scorable; a
sweep over lengths and step counts writes one table."""

import json
import subprocess
import sys

import pytest
import yaml

from services.evaluate import adapter_dir, main as evaluate_main
from services.launch import run as ray_run
from services.settings import SystemConfig
from tests.services.conftest import run_config

pytestmark = pytest.mark.ray


def test_evaluate_a_trained_checkpoint_and_rescore_its_files(ray_session, warm_dir, tmp_path, capsys):
    cfg = run_config(warm_dir, tmp_path / "run", steps=2, rollout={"num_workers": 2})
    ray_run(SystemConfig.parse(cfg), name="t-eval/")
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    assert adapter_dir(str(tmp_path / "run")).endswith("final/adapter")
    code = evaluate_main([str(tmp_path / "run.yaml"), "--checkpoint", str(tmp_path / "run"), "--gen-lengths", "24,32",
                          "--limit", "20", "--out", str(tmp_path / "eval")])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    files = sorted((tmp_path / "eval").glob("*_generations.json"))
    assert [f.name for f in files] == ["countdown_24_12_generations.json", "countdown_32_16_generations.json"]
    d1 = json.loads(files[0].read_text())
    assert len(d1["generations"]) == 20 and (d1["gen_length"], d1["diffusion_steps"], d1["block_length"]) == (24, 12, 24)
    rescored = subprocess.run([sys.executable, "-m", "dllmrl_core.cli", "score", "--task", "countdown", "--protocol",
                               "fixed", str(files[0])], capture_output=True, text=True)
    assert rescored.returncode == 0, rescored.stderr
    assert json.loads(rescored.stdout.strip().splitlines()[-1])["accuracy"] == pytest.approx(
        summary["accuracy"]["countdown"]["L/2"]["24"], abs=0.01)
    assert "| countdown |" in (tmp_path / "eval" / "results.md").read_text()


def test_bad_checkpoint_is_one_line(tmp_path, capsys, warm_dir):
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(run_config(warm_dir, tmp_path / "run")))
    assert evaluate_main([str(tmp_path / "run.yaml"), "--checkpoint", str(tmp_path / "nothing")]) == 2
    assert "no PEFT adapter" in capsys.readouterr().err



def test_a_step_sweep_on_the_tiny_model_writes_one_table(ray_session, warm_dir, tmp_path, capsys):
    """AGRPO's fewer-steps claim and SAPO's step sweep, on CPU: every step count at every length."""
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(run_config(warm_dir, tmp_path / "run",
                                                                 eval={"batch_rows": 3})))
    code = evaluate_main([str(tmp_path / "run.yaml"), "--checkpoint", "base", "--gen-lengths", "16,24",
                          "--steps", "4,8", "--limit", "7", "--out", str(tmp_path / "eval")])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {label: sorted(per) for label, per in summary["accuracy"]["countdown"].items()} == \
        {"4": ["16", "24"], "8": ["16", "24"]}
    files = sorted(p.name for p in (tmp_path / "eval").glob("*_generations.json"))
    assert files == [f"countdown_{n}_{s}_generations.json" for n in (16, 24) for s in (4, 8)]
    written = json.loads((tmp_path / "eval" / "countdown_24_4_generations.json").read_text())
    assert (written["diffusion_steps"], len(written["generations"])) == (4, 7)
    table = (tmp_path / "eval" / "results.md").read_text().splitlines()
    assert table[0] == "| task | steps | 16 tokens | 24 tokens | avg |"
    assert [row.split(" | ")[1] for row in table[2:4]] == ["4", "8"]
    stored = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert stored["countdown"]["8"]["24"]["items"] == 7


def test_a_step_count_that_does_not_fit_is_one_line_before_anything_starts(tmp_path, capsys, warm_dir):
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(run_config(warm_dir, tmp_path / "run")))
    assert evaluate_main([str(tmp_path / "run.yaml"), "--checkpoint", "base", "--gen-lengths", "64",
                          "--steps", "3"]) == 2
    assert "evaluation at gen_length 64: steps (3) must be divisible" in capsys.readouterr().err
    assert evaluate_main([str(tmp_path / "run.yaml"), "--checkpoint", "base", "--steps", "0"]) == 2
    assert "--steps: expected positive integers" in capsys.readouterr().err
