"""`dllmrl generate`: prints completions; bad input is one line on stderr with exit code 2; sampler flags."""

import subprocess
import sys

import pytest


def dllmrl(*args):
    return subprocess.run([sys.executable, "-m", "dllmrl_core.cli", *args], capture_output=True, text=True)


def test_generate_prints_one_completion_per_prompt(tiny_dir):
    out = dllmrl("generate", "--model", str(tiny_dir), "--prompt", "2+3=", "--prompt", "hi", "--gen-length", "16",
                 "--steps", "8", "--block-length", "8", "--temperature", "0.7", "--seed", "1")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split("\n")
    assert len([line for line in lines if line]) >= 1 and len(lines) >= 2


def test_generate_bad_input_is_one_line(tiny_dir, tmp_path):
    missing = dllmrl("generate", "--model", str(tmp_path / "nope"), "--prompt", "x")
    assert missing.returncode == 2 and str(tmp_path / "nope") in missing.stderr
    assert missing.stderr.count("\n") == 1
    bad = dllmrl("generate", "--model", str(tiny_dir), "--prompt", "x", "--gen-length", "30", "--block-length", "8")
    assert bad.returncode == 2 and "gen_length (30) must be divisible by block_length (8)" in bad.stderr


def test_sampler_flags_reach_nested_sections():
    """Dream's knobs live in `sampler.dream`; on the command line they are `--dream-<key>`."""
    import argparse

    from dllmrl_core.commands.flags import add_config_arguments, config_values
    from dllmrl_core.sampling import SamplerConfig

    parser = argparse.ArgumentParser()
    add_config_arguments(parser, SamplerConfig)
    args = parser.parse_args(["--style", "dream", "--gen-length", "8", "--block-length", "8", "--dream-alg",
                              "topk_margin", "--dream-alg-temp", "0.5"])
    cfg = SamplerConfig.parse(config_values(args, SamplerConfig))
    assert cfg.style == "dream" and cfg.dream.alg == "topk_margin" and cfg.dream.alg_temp == 0.5
    assert cfg.dream.eps == 1e-3 and cfg.mode == "dream-topk_margin"


@pytest.mark.parametrize(("flags", "message"), [
    (["--device", "banana"], "device 'banana' is not a torch device"),
    (["--gen-length", "1024", "--block-length", "1024", "--steps", "8"],  # the tiny model has 1024 positions
     "gen_length: 4 prompt tokens + 1024 generated exceed the 1024 positions of the model"),
    (["--temperature", "1e308"], "temperature: Input should be less than or equal to 10"),
    (["--temperature", "inf"], "temperature: Input should be a finite number"),
    (["--cfg-scale", "1e308"], "cfg_scale: Input should be less than or equal to 10"),
], ids=["device", "length", "temperature", "inf", "cfg_scale"])
def test_generate_refuses_what_it_cannot_do_in_one_line(tiny_dir, capsys, flags, message):
    """Issue 16 item 9: each was a traceback, an unbounded run or silently empty output."""
    from dllmrl_core.cli import main

    assert main(["generate", "--model", str(tiny_dir), "--prompt", "2+3=", "--no-chat", *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"dllmrl generate: error: {message}") and err.count("\n") == 1
