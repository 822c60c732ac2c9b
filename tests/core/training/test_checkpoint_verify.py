"""A checkpoint is verified against its manifest before a resume: 'latest' falls back to the newest
intact one and names each it skips; a named one must be intact; a bad resume value is one line."""

import json
import shutil

import pytest

from dllmrl_core.training import checkpoint
from dllmrl_core.training.checkpoint import damage, finalize, resolve


def write(root, step: int):
    """A checkpoint with the files a learner writes (contents stand in for the real ones)."""
    tmp = checkpoint.temp_dir(root, step)
    (tmp / "adapter").mkdir()
    (tmp / "adapter" / "adapter_model.safetensors").write_bytes(bytes(range(256)) * 8)
    (tmp / "trainer.pt").write_bytes(b"optimizer state" * 50)
    (tmp / "rng-rank0.pt").write_bytes(b"rng" * 10)
    return finalize(root, tmp, step, {"step": step, "stream": {"epoch": 0, "cursor": step}}, "a: 1\n", keep=3)


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGE = {
    "truncated adapter": (lambda d: truncate(d / "adapter" / "adapter_model.safetensors"),
                          "adapter/adapter_model.safetensors has 1024 bytes, the manifest says 2048"),
    "truncated trainer state": (lambda d: truncate(d / "trainer.pt"), "trainer.pt has 375 bytes"),
    "empty state.json": (lambda d: (d / "state.json").write_text(""), "state.json has 0 bytes"),
    "same size, other bytes": (lambda d: (d / "rng-rank0.pt").write_bytes(b"RNG" * 10),
                               "rng-rank0.pt does not match its sha256"),
    "write never finished": (lambda d: (d / "manifest.json").unlink(), "no manifest.json"),
    "deleted directory": (lambda d: shutil.rmtree(d), "names step-00000003, which is missing"),
}


@pytest.mark.parametrize("kind", DAMAGE)
def test_latest_falls_back_to_the_newest_intact_checkpoint_and_says_which_it_skipped(tmp_path, capsys, kind):
    for step in (1, 2, 3):
        write(tmp_path, step)
    harm, said = DAMAGE[kind]
    harm(tmp_path / "step-00000003")
    assert resolve(tmp_path, "latest") == tmp_path / "step-00000002"
    assert said in capsys.readouterr().err


def test_an_intact_checkpoint_matches_its_manifest_and_latest_is_the_newest(tmp_path):
    for step in (1, 2):
        write(tmp_path, step)
    assert damage(tmp_path / "step-00000002") is None and (tmp_path / "latest").read_text() == "step-00000002"
    manifest = json.loads((tmp_path / "step-00000002" / "manifest.json").read_text())["files"]
    assert sorted(manifest) == ["adapter/adapter_model.safetensors", "config.yaml", "rng-rank0.pt", "state.json",
                                "trainer.pt"]
    assert resolve(tmp_path, "latest") == tmp_path / "step-00000002" and resolve(tmp_path, None) is None


def test_no_checkpoint_yet_is_a_fresh_start_but_only_damaged_ones_is_an_error(tmp_path):
    assert resolve(tmp_path, "latest") is None
    write(tmp_path, 1)
    truncate(tmp_path / "step-00000001" / "trainer.pt")
    with pytest.raises(ValueError, match=r"^checkpoint.resume: no intact checkpoint under .* \(damaged: step-00000001"):
        resolve(tmp_path, "latest")


def test_a_named_checkpoint_must_be_intact_and_a_typo_is_one_line(tmp_path):
    named = write(tmp_path, 1)
    assert resolve(tmp_path, str(named)) == named
    (named / "state.json").write_text("")
    with pytest.raises(ValueError, match="cannot be resumed from: state.json has 0 bytes") as bad:
        resolve(tmp_path, str(named))
    with pytest.raises(FileNotFoundError, match="'latesst' is neither 'latest' nor a checkpoint directory") as typo:
        resolve(tmp_path, "latesst")
    assert "\n" not in str(bad.value) + str(typo.value)
