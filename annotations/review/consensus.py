"""The consensus rule, plain Python (no Django): which cell a field's consensus holds for each outcome of the
cross-check. The review service stores what these functions return; tests call them directly.

Cells come in as the snapshots the review keeps of the annotators' cells (`annotations.audit.cell_snapshot`: id,
x, y, width, height, countable, cell_class); a consensus cell goes out as {x, y, width, height, countable,
cell_class, source_cell}, the shape a settled conflict stores as its `final_cell`.

- A matched pair both annotators agree on: the mean of A's and B's boxes (both drew the cell; averaging two
  experts' boxes reduces their independent placement errors), the countable flag they agree on and the class they
  agree on; an uncountable cell may lack a class on one side ("no class needed"), then the class the other gave.
  Its source is A's cell.
- A conflict settled for side "a" or "b": for a matched pair the mean box with that side's class and countable
  flag; a box only one annotator drew enters exactly as drawn, or not at all when the side that did not draw it
  wins. Its source is the chosen side's cell.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

BOX_KEYS = ("x", "y", "width", "height")
ConsensusCell = dict[str, Any]


def mean_box(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, float]:
    return {key: (a[key] + b[key]) / 2 for key in BOX_KEYS}


def agreed_cell(a: Mapping[str, Any], b: Mapping[str, Any]) -> ConsensusCell:
    """The consensus cell of a pair both annotators agree on."""
    return {
        **mean_box(a, b),
        "countable": a["countable"],
        "cell_class": a["cell_class"] if a["cell_class"] is not None else b["cell_class"],
        "source_cell": a["id"],
    }


def chosen_cell(
    a: Mapping[str, Any] | None, b: Mapping[str, Any] | None, side: str, *, pair: bool
) -> ConsensusCell | None:
    """The consensus cell when side "a" or "b" wins a conflict between A's cell `a` and B's cell `b` (None where
    that annotator drew nothing); `pair` says the two boxes were matched. None: the consensus holds no cell."""
    chosen = a if side == "a" else b
    if chosen is None:
        return None
    box = mean_box(a, b) if pair and a is not None and b is not None else chosen
    return {
        **{key: box[key] for key in BOX_KEYS},
        "countable": chosen["countable"],
        "cell_class": chosen["cell_class"],
        "source_cell": chosen["id"],
    }
