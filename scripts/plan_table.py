"""Print the memory plan of every shipped LLaDA-8B config as the markdown table in docs/gpu.md.

    python scripts/plan_table.py           # print the table
    python scripts/plan_table.py --check   # exit 1 if docs/gpu.md does not contain it (used by the tests)
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from anywhere without installing
    sys.path.insert(0, str(ROOT))

from dllmrl_core.planning import auto_micro_rows, plan_run  # noqa: E402
from dllmrl_core.planning.estimate import GiB  # noqa: E402
from services.settings import load_system_config  # noqa: E402

HEAD = ("| config | actor × count | peak (GiB) | at | learner micro-batch | fits 80 GB |\n"
        "|---|---|---|---|---|---|")


def rows() -> list[str]:
    paths = sorted((ROOT / "configs" / "llada8b").glob("*_gsm8k.yaml")) + sorted((ROOT / "configs" / "cluster").glob("*.yaml"))
    out = []
    for path in paths:
        cfg = load_system_config(path)
        micro = cfg.optim.micro_batch_rows
        micro = auto_micro_rows(cfg, cfg.topology()) if micro == "auto" else micro
        for plan in plan_run(cfg, cfg.topology()):
            out.append(f"| `{path.relative_to(ROOT)}` | {plan.actor} × {plan.count} | {plan.total / GiB:.1f} | "
                       f"{plan.peak_phase} | {micro if 'learner' in plan.actor or 'colocated' in plan.actor else '–'}"
                       f" | {'yes' if plan.fits else '**no**'} |")
    return out


def table() -> str:
    return "\n".join([HEAD, *rows()])


if __name__ == "__main__":
    text = table()
    if "--check" in sys.argv:
        sys.exit(0 if text in (ROOT / "docs" / "gpu.md").read_text() else 1)
    print(text)
