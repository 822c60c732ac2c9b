"""docs/custom-tasks.md, executed as written: its files are written into an empty directory and each
of its commands runs there (two-step runs through services.launch, each on its own private Ray
instance: about 45 s on 2 cores)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "custom-tasks.md"
BLOCK = re.compile(r"^```(\w+)( file=(\S+))?\n(.*?)^```", re.DOTALL | re.MULTILINE)


def blocks() -> tuple[dict[str, str], list[str]]:
    """(files by name, bash commands) in the page's order."""
    files, commands = {}, []
    for lang, _, name, body in BLOCK.findall(DOC.read_text()):
        if name:
            files[name] = body
        elif lang == "bash":
            commands += [line for line in body.splitlines() if line.strip()]
    return files, commands


def test_the_page_has_both_walk_throughs():
    files, commands = blocks()
    assert {"arith.py", "arith.jsonl", "arith_plugin.yaml", "sums.jsonl", "sums_generic.yaml"} <= set(files)
    assert commands == ["python -m services.launch arith_plugin.yaml train.steps=2",
                        "python -m services.launch sums_generic.yaml train.steps=2"]


def write_page(tmp_path: Path, tiny_dir: Path) -> list[str]:
    """The page's files in tmp_path, the tiny model as runs/tiny-sft; returns its commands."""
    files, commands = blocks()
    for name, body in files.items():
        (tmp_path / name).write_text(body)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "tiny-sft").symlink_to(tiny_dir)  # the README's default run builds this one
    return commands


def test_every_command_of_the_page_runs_as_written(tmp_path, tiny_dir):
    commands = write_page(tmp_path, tiny_dir)
    bin_dir = str(Path(sys.executable).parent)  # `python` is this environment's; the package is this checkout
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    for command in commands:
        proc = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, f"{command}\n{proc.stderr[-3000:]}"
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        assert summary["steps"] == 2 and summary["skipped_rows"] == 0, command
        assert "accuracy_after" not in summary or isinstance(summary["accuracy_after"], float)
    for run in ("arith-plugin", "sums-generic"):
        logged = [json.loads(line) for line in (tmp_path / "runs" / run / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in logged if "reward/mean" in r] == [1, 2]
        assert all("rollout/zero_adv_share" in r for r in logged if "reward/mean" in r)
