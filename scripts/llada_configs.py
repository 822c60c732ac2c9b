"""Write configs/llada8b/<method>_<task>.yaml: LLaDA-8B-Instruct with each paper's recipe.

    python scripts/llada_configs.py          # (re)write the 20 files
    python scripts/llada_configs.py --check  # exit 1 if a committed file differs (used by the tests)

Recipes from the papers and their code (docs/methods.md): d1 (diffu-GRPO; SAPO and DiSPO build on
it), AGRPO, EGSPO, DiSPO, SAPO (N = 3, λ = 1, 64 extra masks: readings, see sapo.py).
Data: each paper's own (docs/methods.md, "Data"): d1's for diffu-GRPO, SAPO, DiSPO and EGSPO,
AGRPO's for AGRPO, with AGRPO's prompts, rewards and answer checking. Files (d1's and SPG's
`dataset/` folders) are read under task.data_dir, /mnt/shared/data; hub names need `datasets`.
Evaluation: every test problem at d1's three lengths (128, 256, 512), d1's protocol.
Placement: colocated on one 8-GPU node, as d1 runs (every GPU samples its share, then all train
under DDP: no GPU waits for another kind); docs/gpu.md explains the choice.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

OUT = Path(__file__).resolve().parent.parent / "configs" / "llada8b"
TASKS = {  # d1 update budgets (DiSPO App. D.3) and d1's μ per task
    "gsm8k": {"steps": 7700, "mu": 12},
    "math500": {"steps": 6600, "mu": 12},
    "countdown": {"steps": 5000, "mu": 8},
    "sudoku": {"steps": 3800, "mu": 8},
}
D1_LORA = {"r": 128, "alpha": 64, "dropout": 0.05, "targets": "d1_compatible"}
D1_OPTIM = {"lr": 3.0e-6, "betas": [0.9, 0.99], "weight_decay": 0.1, "max_grad_norm": 0.2,
            "schedule": "constant_with_warmup", "warmup_steps": 1,
            "micro_batch_rows": "auto"}  # the largest micro-batch the memory plan fits on the learner's GPU
D1_SAMPLER = {"gen_length": 256, "steps": 128, "block_length": 32, "temperature": 0.9}
DATA_DIR = "/mnt/shared/data"  # d1/ = d1's dataset/ folder, spg/ = SPG's (docs/gpu.md, "Data")
COUNTDOWN_HUB = "hub:Jiayi-Pan/Countdown-Tasks-3to4:train"
D1_DATA = {  # d1 diffu-grpo/data_utils.py (training), eval/*.py (test: every problem, Sudoku 256 of 500)
    "gsm8k": {},
    "math500": {},
    "countdown": {"train_source": COUNTDOWN_HUB, "test_source": "d1/countdown_cd3_test.jsonl"},
    "sudoku": {"train_source": "d1/4x4_sudoku_unique_puzzles.csv", "test_source": "d1/4x4_test_sudoku.csv",
               "test_subsample": 256},
}
AGRPO_DATA = {  # probablyabot/agrpo data.py
    "gsm8k": {"test_source": "hub:madrylab/gsm8k-platinum:main:test"},
    "math500": {"train_source": "hub:qwedsacf/competition_math:train", "exclude_test": True,
                "math": {"max_level": 4}},
    "countdown": {"train_source": COUNTDOWN_HUB, "train_rows": 20000, "exclude_test": True,
                  "test_source": "d1/countdown_cd3_test.jsonl"},
    "sudoku": {"train_source": "spg/train_sudoku_split_new.csv", "train_rows": 20000,
               "test_source": "spg/test_sudoku_split_new.csv"},
}
EVAL = {"num_examples": None, "gen_length": [128, 256, 512], "batch_rows": 32}


def method_sections(method: str, mu: int) -> dict:
    d1 = {"beta": 0.04, "epsilon": 0.5, "num_iterations": mu, "p_mask_prompt": 0.15}
    if method == "diffu_grpo":
        return {"algorithm": {"diffu_grpo": d1}}
    if method == "sapo":
        return {"algorithm": {"sapo": {**d1, "num_continuations": 3, "process_weight": 1.0,
                                       "continuation_extra_masks": 64}}}
    if method == "dispo":
        return {"algorithm": {"dispo": {**d1, "num_branches": 2, "alpha_step": 0.5, "timestep_degree": 4.0}}}
    if method == "egspo":
        return {"algorithm": {"egspo": {"num_steps": 8, "lambda1": 0.5, "epsilon": 0.2, "epsilon_high": 0.5,
                                        "beta": 0.04}},
                "optim": {**D1_OPTIM, "lr": 3.0e-5}, "train": {"group_size": 8}}
    return {  # agrpo
        "algorithm": {"agrpo": {"mc_samples": 24, "importance_sampling": "entropy", "epsilon": 0.2, "beta": 0.0}},
        "model": {"lora": {"r": 64, "alpha": 64, "dropout": 0.0, "targets": "all"}},
        "sampler": {"gen_length": 384, "steps": 128, "block_length": 12, "temperature": 0.6, "top_k": 150,
                    "top_p": 0.99, "top_p_rule": "agrpo", "remasking": "random"},
        "optim": {"lr": 5.0e-6, "betas": [0.9, 0.99], "weight_decay": 0.01, "max_grad_norm": 1.0,
                  "schedule": "cosine", "warmup_steps": 50, "micro_batch_rows": "auto"},
        "train": {"group_size": 8},
    }


def task_section(method: str, task: str) -> dict:
    """The task, its prompts, rewards and answer checking, and the paper's data."""
    style = "agrpo" if method == "agrpo" else "d1"
    data = (AGRPO_DATA if method == "agrpo" else D1_DATA)[task]
    files = any(not str(v).startswith("hub:") for k, v in data.items() if k.endswith("_source"))
    return {"name": task, "reward_set": style, "prompt_style": style, "eval_protocol": style,
            **({"data_dir": DATA_DIR} if files else {}), **data}


def config(method: str, task: str) -> dict:
    t = TASKS[task]
    mu = 1 if method in ("agrpo", "egspo") else t["mu"]
    cfg = {
        "model": {"path": "GSAI-ML/LLaDA-8B-Instruct", "lora": D1_LORA},
        "task": task_section(method, task),
        "sampler": D1_SAMPLER,
        "algorithm": {"name": method},
        "optim": D1_OPTIM,
        "train": {"steps": t["steps"], "prompts_per_step": 16, "group_size": 6, "seed": 0},
        "placement": "colocated",
        "learner": {"num_workers": 8, "num_gpus_per_worker": 1, "num_cpus_per_worker": 4},
        "reward": {"num_actors": 2, "processes_per_actor": 8, "num_cpus_per_actor": 8},
        "checkpoint": {"dir": f"/mnt/shared/dllmrl/{method}_{task}", "save_every": 10 * mu, "resume": "latest"},
        "eval": {"every": 20 * mu, **EVAL},
        "status": {"host": "127.0.0.1", "port": 8266},
    }
    for section, values in method_sections(method, mu).items():
        cfg[section] = {**cfg[section], **values}
    if method == "agrpo" and task == "sudoku":  # AGRPO's Sudoku system prompt holds three worked examples
        cfg["plan"] = {"prompt_tokens": 1024}
    return cfg


def render(method: str, task: str) -> str:
    head = (f"# LLaDA-8B-Instruct, {method} on {task}: generated by scripts/llada_configs.py from the papers' recipes.\n"
            "# One 8-GPU node, placement colocated (docs/gpu.md); `dllmrl plan` shows its memory plan.\n")
    return head + yaml.safe_dump(config(method, task), sort_keys=False)


def main(argv: list[str]) -> int:
    stale = []
    for method in ("diffu_grpo", "sapo", "agrpo", "dispo", "egspo"):
        for task in TASKS:
            path, text = OUT / f"{method}_{task}.yaml", render(method, task)
            if "--check" in argv:
                if not path.is_file() or path.read_text() != text:
                    stale.append(path.name)
            else:
                OUT.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    if stale:
        print(f"out of date (run python scripts/llada_configs.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
