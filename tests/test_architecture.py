"""docs/architecture.md stays true: every module path it names exists, and it names every package
of the core and every module of the Ray layer; services/__init__.py maps every module it has."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"


def named_paths(text: str) -> set[str]:
    """Repository paths in backticks, e.g. `dllmrl_core/drive/driver.py` or `dllmrl_core/contract/`."""
    return set(re.findall(r"`((?:dllmrl_core|services|tests|scripts|bench|docs)/[\w./-]*)`", text))


def named_modules(text: str) -> set[str]:
    """Dotted module names in backticks, e.g. `services.launch`."""
    return set(re.findall(r"`((?:dllmrl_core|services)(?:\.\w+)+)`", text))


def module_exists(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def test_every_path_and_module_it_names_exists():
    text = DOC.read_text()
    paths, modules = named_paths(text), named_modules(text)
    assert len(paths) > 40
    assert sorted(p for p in paths if not (ROOT / p).exists()) == []
    assert sorted(m for m in modules if not module_exists(m)) == []


def test_it_names_every_core_package_and_every_service_module():
    text = DOC.read_text()
    named = {p.rstrip("/") for p in named_paths(text)}
    packages = {str(p.parent.relative_to(ROOT)) for p in (ROOT / "dllmrl_core").glob("*/__init__.py")}
    services = {str(p.relative_to(ROOT)) for p in (ROOT / "services").glob("*.py") if p.name != "__init__.py"}
    assert sorted(packages - named) == [] and sorted(services - named) == []


def test_the_services_package_maps_every_module():
    import services

    modules = {p.name for p in (ROOT / "services").glob("*.py") if p.name != "__init__.py"}
    assert sorted(m for m in modules if not re.search(rf"^\s+{re.escape(m)}\s", services.__doc__, re.M)) == []
