"""docs/configuration.md is generated from the config models, is up to date, and documents every key;
the hand-written docs only cite files that exist."""

import dataclasses
import importlib.util
import re
import sys
import types
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from dllmrl_core.contract.configbase import ConfigModel
from services.settings import SystemConfig

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def load_config_docs():
    spec = importlib.util.spec_from_file_location("config_docs", ROOT / "scripts" / "config_docs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


config_docs = load_config_docs()


def leaf_paths(cls: type, prefix: str = "") -> list[str]:
    """Every leaf key under `cls` (walked here independently of the generator)."""
    if issubclass(cls, BaseModel):
        items = [(name, info.annotation) for name, info in cls.model_fields.items()]
    else:
        hints = typing.get_type_hints(cls)
        items = [(f.name, hints[f.name]) for f in dataclasses.fields(cls)]
    out = []
    for name, annotation in items:
        path = f"{prefix}{name}"
        union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
        args = typing.get_args(annotation) if union else (annotation,)
        nested = [a for a in args if isinstance(a, type) and (issubclass(a, BaseModel) or dataclasses.is_dataclass(a))]
        out += leaf_paths(nested[0], f"{path}.") if nested else [path]
    return out


def test_every_config_field_has_a_description():
    config_docs.collect()  # raises MissingDescription naming the keys


def test_configuration_md_is_up_to_date():
    assert config_docs.check() == [], "run: python scripts/config_docs.py"


def test_every_run_config_key_is_in_the_reference():
    text = (DOCS / "configuration.md").read_text()
    paths = leaf_paths(SystemConfig)
    assert len(paths) > 100 and "algorithm.sapo.continuation_extra_masks" in paths
    missing = [p for p in paths if f"| `{p}` |" not in text]
    assert not missing, f"undocumented keys: {missing}"
    assert sorted(paths) == sorted(config_docs.key_paths())


def test_a_field_without_description_is_an_error_naming_it():
    class Inner(ConfigModel):
        """A section: its docstring describes it."""

        good: int = Field(1, description="documented")
        bare: int = 2

    class NoDoc(ConfigModel):
        x: int = Field(1, description="documented")

    class Outer(ConfigModel):
        inner: Inner = Inner()
        nodoc: NoDoc = NoDoc()
        described: NoDoc = Field(NoDoc(), description="a Field description also describes a section")
        flag: bool = False

    missing: list[str] = []
    config_docs.walk(Outer, "", 0, "", None, [], missing, {})
    assert sorted(missing) == ["flag", "inner.bare", "nodoc"]
    with pytest.raises(ValueError, match="inner.bare"):
        raise config_docs.MissingDescription(missing)


def test_check_reports_a_stale_file(tmp_path, monkeypatch):
    stale = tmp_path / "configuration.md"
    stale.write_text("old\n")
    monkeypatch.setattr(config_docs, "OUT", stale)
    monkeypatch.setattr(config_docs, "ROOT", tmp_path.parent)
    monkeypatch.setattr(config_docs, "render", lambda: "new\n")
    assert config_docs.check() and config_docs.main(["--check"]) == 1


@pytest.mark.parametrize("name", ["configuration.md", "methods.md", "gpu.md"])
def test_cited_repository_files_exist(name):
    """Every `path/to/file.ext` a doc cites in backticks exists in the repository."""
    text = (DOCS / name).read_text()
    cited = set(re.findall(r"`((?:dllmrl_core|services|scripts|configs|tests|docs)/[\w./-]*\.(?:py|yaml|md))", text))
    assert cited, name
    missing = sorted(p for p in cited if not (ROOT / p).exists())
    assert not missing, f"{name} cites missing files: {missing}"


NOTES = "algorithms" + ".md"  # the project's research notes: not in this repository, so never cited


def test_no_file_cites_the_research_notes():
    """Every citation can be followed from the repository alone: papers, their equations, docs/."""
    import subprocess

    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split("\n")
    files = [ROOT / name for name in listed if name and (ROOT / name).is_file()]
    assert len(files) > 50
    citing = []
    for path in files:
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue  # binary files (images, data)
        citing += [f"{path.relative_to(ROOT)}:{i}" for i, line in enumerate(text.splitlines(), 1) if NOTES in line]
    assert not citing, citing
