"""Raw records from a local file or a hub dataset, one dict per row (None = unreadable row).

Sources: a path ending in .jsonl, .json (a list of objects), .csv (header row) or .parquet, a
directory written by `datasets.Dataset.save_to_disk` (one split), or
`hub:<dataset>[:<config>]:<split>` (e.g. `hub:openai/gsm8k:main:test`), which needs the optional
`datasets` package and a network. Task loaders turn rows into typed examples and count the bad ones.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

HUB_PREFIX = "hub:"
Row = dict[str, Any] | None


def read_rows(source: str) -> tuple[list[Row], str]:
    """All records of `source` and a printable description of where they came from."""
    if source.startswith(HUB_PREFIX):
        return _hub_rows(source), source
    path = Path(source)
    if path.is_dir() and (path / "state.json").is_file():
        return _saved_dataset_rows(path), str(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such data file: {source}")
    suffix = path.suffix.lower()
    readers = {".jsonl": _jsonl_rows, ".json": _json_rows, ".csv": _csv_rows, ".parquet": _parquet_rows}
    if suffix not in readers:
        raise ValueError(f"{source}: unsupported data file type {suffix or '(none)'!r}; "
                         f"use {', '.join(readers)} or {HUB_PREFIX}<dataset>[:<config>]:<split>")
    return readers[suffix](path), str(path)


def _as_row(value: Any) -> Row:
    return value if isinstance(value, dict) else None


def _jsonl_rows(path: Path) -> list[Row]:
    rows: list[Row] = []
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                rows.append(_as_row(json.loads(line)))
            except ValueError:  # JSONDecodeError, or a number too long to convert
                rows.append(None)
    return rows


def _json_rows(path: Path) -> list[Row]:
    try:
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except ValueError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of objects")
    return [_as_row(item) for item in data]


def _csv_rows(path: Path) -> list[Row]:
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        reader = csv.DictReader(f)
        rows: list[Row] = []
        for record in reader:
            # A short row leaves missing columns as None; a long row puts extras under key None.
            bad = None in record or any(v is None for v in record.values())
            rows.append(None if bad else dict(record))
        return rows


def _parquet_rows(path: Path) -> list[Row]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises several unrelated types for a damaged file
        raise ValueError(f"{path}: cannot read parquet ({type(err).__name__}: {err})") from None
    return [_as_row(item) for item in table.to_pylist()]


def _saved_dataset_rows(path: Path) -> list[Row]:
    """A split written by `datasets.Dataset.save_to_disk`: its Arrow stream files, listed in state.json
    (read with pyarrow; the `datasets` package is not needed)."""
    import pyarrow as pa

    try:
        files = [item["filename"] for item in json.loads((path / "state.json").read_text())["_data_files"]]
        tables = [pa.ipc.open_stream(pa.memory_map(str(path / name))).read_all() for name in files]
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException) as err:
        raise ValueError(f"{path}: cannot read the saved dataset ({type(err).__name__}: {err})") from None
    return [_as_row(item) for table in tables for item in table.to_pylist()]


def parse_hub_source(source: str) -> tuple[str, str | None, str]:
    """`hub:<dataset>[:<config>]:<split>` -> (dataset, config, split)."""
    parts = source[len(HUB_PREFIX):].split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"bad hub source {source!r}; expected {HUB_PREFIX}<dataset>[:<config>]:<split>")
    return parts[0], (parts[1] if len(parts) == 3 else None), parts[-1]


def _hub_rows(source: str) -> list[Row]:
    name, config, split = parse_hub_source(source)
    try:
        import datasets
    except ImportError:
        raise ValueError(f"{source}: hub datasets need the optional 'datasets' package "
                         "(pip install 'dllmrl[hub]'), or pass a local file") from None
    try:
        data = datasets.load_dataset(name, config, split=split)
    except Exception as err:  # offline, unknown name, bad split: all surface as different types
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ValueError(f"{source}: cannot load hub dataset ({type(err).__name__}: {first})") from None
    return [_as_row(item) for item in data]
