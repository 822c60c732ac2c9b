"""dllmrl_core is a plain PyTorch library: it never imports ray, fastapi or uvicorn."""

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import dllmrl_core

FORBIDDEN = ("ray", "fastapi", "uvicorn", "services")
CORE = Path(dllmrl_core.__file__).parent


def test_no_core_file_imports_the_service_layer():
    offenders = []
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.relative_to(CORE)}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_importing_every_core_module_loads_none_of_them():
    modules = [m.name for m in pkgutil.walk_packages([str(CORE)], prefix="dllmrl_core.")]
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            f"print(sorted(n for n in sys.modules if n.split('.')[0] in {FORBIDDEN!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
