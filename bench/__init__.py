"""Benchmarks (docs/performance.md). Each prints its figures as its last line, one JSON object."""

import json


def emit(result: dict) -> dict:
    """Print `result` as the run's last line (one JSON object) and return it."""
    print(json.dumps(result), flush=True)
    return result
