"""The memory planner: its activation formula against what autograd really saves, its shapes against
built models, every shipped config fits, and `services.launch` refuses one that does not."""

import glob
import json
from pathlib import Path

import pytest
import torch

from dllmrl_core.models.llada import LLaDAConfig, LLaDAModelLM
from dllmrl_core.planning import auto_micro_rows, plan_run
from dllmrl_core.planning.estimate import Lora, Precision, block_saved
from dllmrl_core.planning.plan import AUTO_HEADROOM, learner_phases, precision, setting, weights, adapter
from dllmrl_core.planning.shape import KNOWN, ModelShape, model_shape, shape_from_config
from dllmrl_core.training.lora import LoraSettings, add_lora
from services.settings import load_system_config

ROOT = Path(__file__).resolve().parents[3]
RUN_CONFIGS = sorted(p for p in glob.glob(str(ROOT / "configs" / "**" / "*.yaml"), recursive=True) if "sft" not in p)


def tiny_llada(n_kv_heads=4, layers=2, vocab=50, tied=False) -> LLaDAModelLM:
    cfg = LLaDAConfig(d_model=64, n_heads=4, n_kv_heads=n_kv_heads, n_layers=layers, mlp_hidden_size=96,
                      vocab_size=vocab, embedding_size=vocab, weight_tying=tied, mask_token_id=vocab - 1,
                      eos_token_id=0, pad_token_id=1)
    torch.manual_seed(0)
    return LLaDAModelLM(cfg)


def saved_bytes(model, ids, autocast: bool) -> int:
    """Distinct storages autograd keeps for the backward of a forward up to the final norm."""
    seen: dict[int, int] = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else torch.autocast("cpu", enabled=False)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), ctx:
        model(ids, logits_at=torch.zeros_like(ids, dtype=torch.bool), hidden=True)  # no position: no head
    return sum(v for k, v in seen.items() if k not in params)


@pytest.mark.parametrize("targets", ["all", "d1_compatible", ["q_proj", "ff_out"], ["attn_out", "up_proj"]])
@pytest.mark.parametrize("dropout", [0.0, 0.1])
@pytest.mark.parametrize("n_kv_heads", [4, 2])
@pytest.mark.parametrize("autocast", [False, True])
def test_block_activations_are_exactly_what_autograd_saves(targets, dropout, n_kv_heads, autocast):
    B, T = 3, 20
    ids = torch.randint(2, 48, (B, T))
    # CPU autocast emulates the CUDA policy (bf16 base, fp32 LoRA), except that CPU dropout keeps its
    # noise in the input's dtype (fp32: PEFT casts to its weights' dtype first) where CUDA keeps a bool mask
    prec = Precision("cpu", 2, 2, True, 4) if autocast else Precision.of("cpu")
    measured = {}
    for layers in (2, 3):
        base = tiny_llada(n_kv_heads=n_kv_heads, layers=layers)
        base = base.to(torch.bfloat16) if autocast else base
        model = add_lora(base, LoraSettings(r=8, alpha=16, dropout=dropout, targets=targets)).train()
        measured[layers] = saved_bytes(model, ids, autocast)
    shape = shape_from_config(base.config.to_dict())
    per_layer = shape.lora_params(targets, 8) // 3
    lora = Lora(8, dropout, shape.lora_roles(targets), per_layer)
    # one more block (not the first): exactly the formula, plus its LoRA weights' bf16 casts
    assert measured[3] - measured[2] == B * T * block_saved(shape, lora, prec) + (2 * per_layer if autocast else 0)
    # the first block's input needs no gradient: it keeps less, at most what the formula says
    hd = shape.d_model // shape.n_heads
    constants = 2 * T * hd * 4 + B * T + (4 * per_layer if autocast else 0)  # RoPE cos/sin, selection mask, casts
    upper = B * T * (block_saved(shape, lora, prec, first=True) + block_saved(shape, lora, prec)) + constants
    assert 0.7 * upper <= measured[2] <= upper


@pytest.mark.parametrize("kw", [{}, {"n_kv_heads": 2}, {"tied": True}])
def test_parameter_counts_equal_the_built_model(kw):
    model = tiny_llada(**kw)
    shape = shape_from_config(model.config.to_dict())
    assert shape.params == sum(p.numel() for p in model.parameters())
    for targets in ("all", "d1_compatible", ["v_proj", "ff_proj"]):
        wrapped = add_lora(tiny_llada(**kw), LoraSettings(r=4, alpha=8, dropout=0.0, targets=targets))
        assert shape.lora_params(targets, 4) == sum(p.numel() for p in wrapped.parameters() if p.requires_grad)


def test_llada_8b_shape_is_known_without_a_download():
    shape = model_shape("GSAI-ML/LLaDA-8B-Instruct")
    assert shape == shape_from_config(LLaDAConfig().to_dict())
    assert round(shape.params / 1e9, 2) == 8.02
    assert model_shape("/mnt/shared/models/LLaDA-8B-Instruct") == shape  # a cluster path named like it
    assert model_shape("Dream-org/Dream-v0-Instruct-7B").naming == "llama"
    with pytest.raises(FileNotFoundError, match="model.path: nowhere/at-all"):
        model_shape("nowhere/at-all")
    assert set(KNOWN) >= {"GSAI-ML/LLaDA-8B-Instruct"}


def system(path, overrides=()):
    """A shipped config and the topology its Ray settings describe: what `plan_run` reads."""
    cfg = load_system_config(path, list(overrides))
    return cfg, cfg.topology()


@pytest.mark.parametrize("path", RUN_CONFIGS, ids=lambda p: str(Path(p).relative_to(ROOT)))
def test_every_shipped_config_fits_its_gpus(path):
    plans = plan_run(*system(path))
    assert plans and all(p.fits for p in plans), [p.verdict() for p in plans]
    if "llada8b" in path or "cluster" in path:  # the 8B recipes run on GPUs, each actor judged
        assert all(p.device == "cuda" and p.capacity is not None for p in plans)


def test_the_evaluation_phase_plans_the_longest_length_in_batches():
    path = ROOT / "configs" / "llada8b" / "diffu_grpo_gsm8k.yaml"  # every problem at 128, 256, 512 tokens
    items = plan_run(*system(path))[0].phases["evaluation"]
    assert "evaluation step (32 rows × 512 tokens, greedy)" in items[0].what
    shorter = plan_run(*system(path, ["eval.gen_length=[128, 256]"]))[0].phases["evaluation"]
    assert sum(i.bytes for i in shorter) < sum(i.bytes for i in items)
    share = plan_run(*system(path, ["eval.num_examples=64"]))[0].phases["evaluation"]  # 8 rows per worker
    assert "(8 rows × 512 tokens" in share[0].what


def test_auto_micro_batch_is_the_largest_that_fits():
    cfg = load_system_config(ROOT / "configs" / "cluster" / "llada8b_gsm8k_agrpo.yaml")  # 768 rows per rank
    micro = auto_micro_rows(cfg, cfg.topology())
    s, prec = setting(cfg), precision(cfg, 1)
    resident = sum(i.bytes for i in [weights(s, prec), *adapter(s, True, cfg.learner.num_workers, prec)])
    cap = AUTO_HEADROOM * (cfg.plan.gpu_memory_gib - cfg.plan.reserve_gib) * 2**30

    def peak(m):
        return resident + max(sum(i.bytes for i in items) for items in
                              learner_phases(cfg, s, prec, cfg.learner.num_workers, m).values())

    assert micro > 1, micro  # more than one row per micro-batch
    assert micro < 768, micro  # and fewer than the rank's 768
    assert peak(micro) <= cap, (peak(micro), cap)  # it fits
    assert peak(micro + 1) > cap, (peak(micro + 1), cap)  # one row more does not
    assert auto_micro_rows(cfg, cfg.topology(), gpu_memory_gib=141.0) > micro  # an H200 takes more rows
    tiny = load_system_config(ROOT / "configs" / "tiny_countdown.yaml", ["optim.micro_batch_rows=auto",
                                                                          "algorithm.name=agrpo"])
    k = tiny.algorithm.agrpo.mc_samples
    assert auto_micro_rows(tiny, tiny.topology()) == 8 * 8 * k  # CPU: every row (8 prompts x G 8 x AGRPO's k)


def test_a_learner_without_micro_batches_does_not_fit_and_the_plan_names_the_knob(capsys):
    from services.cli import main

    path = str(ROOT / "configs" / "llada8b" / "egspo_gsm8k.yaml")
    assert main(["plan", path, "optim.micro_batch_rows=null"]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(out[-1])
    assert not summary["fits"] and summary["actors"]["colocated worker"]["knob"].startswith("set optim.micro_batch_rows")
    assert any("colocated worker × 8" in line for line in out)
    assert main(["plan", path, "--gpu-memory", "80"]) == 0


def test_launch_refuses_a_config_that_does_not_fit_before_anything_starts(capsys, tmp_path):
    import ray

    from services.launch import main

    path = str(ROOT / "configs" / "llada8b" / "dispo_gsm8k.yaml")
    code = main([path, "optim.micro_batch_rows=null", f"checkpoint.dir={tmp_path / 'run'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "colocated worker" in err[0] and "GiB" in err[0] and "optim.micro_batch_rows" in err[0]
    assert not ray.is_initialized() and not (tmp_path / "run").exists()
