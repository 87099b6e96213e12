"""The figures the reliability suite reports; `make reliability` collects them and prints one table.

Tests call `record_figure` with what they tried and what held (inputs refused, faults survived, latencies). Under
`make reliability` the runner points AICELL_RELIABILITY_FIGURES at a JSON-lines file and sets
AICELL_RELIABILITY_FULL=1 (full-size runs); in `make test` the same tests run bounded and record nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

FIGURES_ENV = "AICELL_RELIABILITY_FIGURES"
FULL_ENV = "AICELL_RELIABILITY_FULL"


def full_mode() -> bool:
    """Whether the suite runs at full size (`make reliability`) rather than bounded (`make test`)."""
    return os.environ.get(FULL_ENV) == "1"


def record_figure(section: str, name: str, value: float | int | str) -> None:
    """Append one figure (e.g. section "hostile input", name "uploads refused", value 42) for the report table."""
    target = os.environ.get(FIGURES_ENV)
    if not target:
        return
    with Path(target).open("a", encoding="utf-8") as stream:
        stream.write(json.dumps({"section": section, "name": name, "value": value}) + "\n")
