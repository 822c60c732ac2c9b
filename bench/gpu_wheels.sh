#!/usr/bin/env bash
# Wheels for bench/gpu_smoke.py on a GPU machine without network (Python 3.12, x86-64): what the core
# needs beyond torch, transformers, peft and accelerate, pinned as in constraints.txt. Writes .whl/
# (ignored by git: add `/.whl/` to .git/info/exclude). There:
#   python3 -m pip install -q --no-index --find-links .whl --target /tmp/site pydantic && export PYTHONPATH=/tmp/site:.
set -euo pipefail
cd "$(dirname "$0")/.."
pin() { grep -i "^$1==" constraints.txt; }
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
    "$(pin pydantic)" "$(pin pydantic_core)" "$(pin annotated-types)" "$(pin typing-inspection)" \
    "$(pin typing_extensions)"
ls .whl
