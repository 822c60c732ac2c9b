"""CPU seconds per process, from /proc: what a Ray run spends, by role (driver, GCS, raylet, actors).

Wall time on a shared machine moves with other load; CPU seconds per step move much less, so
bench/pipeline.py reports both.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path


def process_table() -> dict[int, tuple[int, float, str]]:
    """pid -> (parent pid, CPU seconds so far, process title) for every process on the machine."""
    tick, out = os.sysconf("SC_CLK_TCK"), {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
            title = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        out[int(name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick, title)
    return out


def tree_cpu(root: int) -> dict[int, tuple[float, str]]:
    """CPU seconds and title of `root` and every process below it (here: this driver, and the local
    Ray instance it started: GCS, raylet and every worker)."""
    table, below = process_table(), defaultdict(list)
    for pid, (ppid, _, _) in table.items():
        below[ppid].append(pid)
    out, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            out[pid] = table[pid][1:]
            todo += below[pid]
    return out


def role(title: str) -> str:
    """'ray::RolloutWorker.generate' -> 'RolloutWorker'; '/path/raylet' -> 'raylet'; python ... -> 'driver/other'."""
    if title.startswith("ray::"):
        return title[5:].split(".")[0]
    base = os.path.basename(title)
    return base if base in ("raylet", "gcs_server") else "python (driver, log monitor, dashboard agent)"


def cpu_per_step(samples: dict[int, dict], steps: list[int]) -> dict:
    """Mean CPU seconds per steady step, in total and per role, from per-step process samples."""
    total, roles, titles = 0.0, defaultdict(float), {}
    for s in steps:
        before, after = samples[s - 1], samples[s]
        for pid, (cpu, title) in after.items():
            used = cpu - before.get(pid, (0.0, ""))[0]
            titles[pid] = title if title != "ray::IDLE" else titles.get(pid, title)
            roles[(pid, titles[pid])] += used
            total += used
    by_role = defaultdict(float)
    for (_, title), used in roles.items():
        by_role[role(title)] += used / len(steps)
    return {"cpu_s_per_step": round(total / len(steps), 4),
            "cpu_s_per_step_by_role": {k: round(v, 4) for k, v in sorted(by_role.items(), key=lambda x: -x[1])
                                       if v >= 0.0005}}

