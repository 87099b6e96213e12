"""Differential count of one smear or case (DESIGN.md "Per smear and per case the platform counts the cells").

The denominator is the number of *nucleated cells counted*: every cell that is countable and carries a class
(all 21 taxonomy classes are nucleated cells). Uncountable cells (crushed, smudged, debris) never enter the
count, and countable cells still waiting for a class cannot be placed in a class either; both are reported
separately so a reviewer sees why the total is smaller than the number of boxes.

Each percentage comes with a 95% binomial confidence interval for the number counted (Clopper-Pearson
"exact" by default, or Wilson), because a 20% blast count means little on 30 cells and a lot on 500.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from statsmodels.stats.proportion import proportion_confint

from annotations.jsonable import JsonMixin
from annotations.taxonomy import (
    BLAST_CLASS_IDS,
    CELL_CLASSES,
    ERYTHROID_LINEAGES,
    MYELOID_LINEAGES,
    NUM_CLASSES,
    Lineage,
    class_by_id,
)

CIMethod = Literal["exact", "wilson"]
CI_METHODS: tuple[str, ...] = get_args(CIMethod)
DEFAULT_CI_METHOD: CIMethod = "exact"
CI_LEVEL = 0.95
# statsmodels calls Clopper-Pearson "beta" (it inverts the beta distribution).
_STATSMODELS_METHOD = {"exact": "beta", "wilson": "wilson"}

CellId = str | int


def proportion_ci(count: int, total: int, method: CIMethod = DEFAULT_CI_METHOD) -> tuple[float, float]:
    """95% confidence interval of the proportion count/total, as fractions in [0, 1]."""
    if method not in _STATSMODELS_METHOD:
        raise ValueError(f"unknown confidence interval method {method!r}; expected one of {CI_METHODS}")
    if total <= 0 or not 0 <= count <= total:
        raise ValueError(f"a proportion needs 0 <= count <= total and total > 0, got {count}/{total}")
    low, high = proportion_confint(count, total, alpha=1 - CI_LEVEL, method=_STATSMODELS_METHOD[method])
    # Wilson's bounds at p = 0 and p = 1 come out of floating point a hair outside the interval (2.8e-17 above 0,
    # 1 - 1.1e-16): an interval always lies in [0, 1] and holds the observed proportion.
    observed = count / total
    return max(0.0, min(float(low), observed)), min(1.0, max(float(high), observed))


@dataclass(frozen=True)
class CountedCell:
    cell_id: CellId
    cell_class: int | None
    countable: bool

    def __post_init__(self) -> None:
        if self.cell_class is not None and not 0 <= self.cell_class < NUM_CLASSES:
            raise ValueError(f"cell {self.cell_id!r}: class id {self.cell_class} is outside 0..{NUM_CLASSES - 1}")


@dataclass(frozen=True)
class Share(JsonMixin):
    """`count` of `n` counted cells as a percentage with its confidence interval (all None when n is 0)."""

    count: int
    n: int
    percent: float | None
    ci_low: float | None
    ci_high: float | None
    ci_method: str


def share_of(count: int, n: int, method: CIMethod = DEFAULT_CI_METHOD) -> Share:
    if n == 0:
        return Share(count, n, None, None, None, method)
    low, high = proportion_ci(count, n, method)
    percent = 100.0 * count / n
    # Scaled to percent the bounds still hold the percentage (the product may round differently).
    return Share(count, n, percent, min(100.0 * low, percent), max(100.0 * high, percent), method)


@dataclass(frozen=True)
class ClassCount(JsonMixin):
    class_id: int
    name: str
    lineage: str
    is_blast: bool
    share: Share
    cell_ids: tuple[CellId, ...]


@dataclass(frozen=True)
class GroupCount(JsonMixin):
    """Several classes counted together (a lineage, all blasts, a rule's numerator)."""

    name: str
    class_ids: tuple[int, ...]
    share: Share
    cell_ids: tuple[CellId, ...]


@dataclass(frozen=True)
class MERatio(JsonMixin):
    value: float | None
    myeloid: int
    erythroid: int
    reason: str | None


def count_group(
    classes: Sequence[ClassCount], n_counted: int, name: str, class_ids: Iterable[int], ci_method: CIMethod
) -> GroupCount:
    ids = tuple(sorted(set(class_ids)))
    members = [classes[class_by_id(class_id).id] for class_id in ids]
    count = sum(member.share.count for member in members)
    cell_ids = tuple(cell_id for member in members for cell_id in member.cell_ids)
    return GroupCount(name, ids, share_of(count, n_counted, ci_method), cell_ids)


@dataclass(frozen=True)
class Differential(JsonMixin):
    """`classes` holds all 21 taxonomy classes in id order, so `classes[i]` is class id i."""

    source: str
    ci_method: CIMethod
    n_cells: int
    n_counted: int
    n_uncountable: int
    n_unclassified: int
    blasts: GroupCount
    classes: tuple[ClassCount, ...]
    lineages: tuple[GroupCount, ...]
    me_ratio: MERatio
    uncountable_cell_ids: tuple[CellId, ...]
    unclassified_cell_ids: tuple[CellId, ...]
    warnings: tuple[str, ...]

    def group(self, name: str, class_ids: Iterable[int], ci_method: CIMethod | None = None) -> GroupCount:
        """Count the cells of several classes together, e.g. the numerator of a diagnosis rule."""
        return count_group(self.classes, self.n_counted, name, class_ids, ci_method or self.ci_method)


def build_differential(
    cells: Sequence[CountedCell], source: str = "consensus", ci_method: CIMethod = DEFAULT_CI_METHOD
) -> Differential:
    """Count `cells` (one smear or a whole case); `source` ("consensus", "model", ...) is carried through."""
    if ci_method not in _STATSMODELS_METHOD:
        raise ValueError(f"unknown confidence interval method {ci_method!r}; expected one of {CI_METHODS}")
    uncountable = tuple(cell.cell_id for cell in cells if not cell.countable)
    unclassified = tuple(cell.cell_id for cell in cells if cell.countable and cell.cell_class is None)
    ids_by_class: list[list[CellId]] = [[] for _ in range(NUM_CLASSES)]
    for cell in cells:
        if cell.countable and cell.cell_class is not None:
            ids_by_class[cell.cell_class].append(cell.cell_id)
    n_counted = sum(len(ids) for ids in ids_by_class)
    classes = tuple(
        ClassCount(
            spec.id, spec.name, spec.lineage.value, spec.is_blast, share_of(len(ids), n_counted, ci_method), tuple(ids)
        )
        for spec, ids in zip(CELL_CLASSES, ids_by_class, strict=True)
    )
    lineages = tuple(
        count_group(classes, n_counted, lineage.value, (c.id for c in CELL_CLASSES if c.lineage is lineage), ci_method)
        for lineage in Lineage
    )
    return Differential(
        source=source,
        ci_method=ci_method,
        n_cells=len(cells),
        n_counted=n_counted,
        n_uncountable=len(uncountable),
        n_unclassified=len(unclassified),
        blasts=count_group(classes, n_counted, "blasts", BLAST_CLASS_IDS, ci_method),
        classes=classes,
        lineages=lineages,
        me_ratio=_me_ratio(classes),
        uncountable_cell_ids=uncountable,
        unclassified_cell_ids=unclassified,
        warnings=_warnings(len(cells), n_counted, len(uncountable), len(unclassified)),
    )


def _me_ratio(classes: Sequence[ClassCount]) -> MERatio:
    myeloid = sum(c.share.count for c in classes if Lineage(c.lineage) in MYELOID_LINEAGES)
    erythroid = sum(c.share.count for c in classes if Lineage(c.lineage) in ERYTHROID_LINEAGES)
    if erythroid == 0:
        return MERatio(None, myeloid, erythroid, "no erythroid cells counted: the M:E ratio is undefined")
    return MERatio(myeloid / erythroid, myeloid, erythroid, None)


def _warnings(n_cells: int, n_counted: int, n_uncountable: int, n_unclassified: int) -> tuple[str, ...]:
    warnings = []
    if n_cells == 0:
        warnings.append("no cells: nothing to count")
    elif n_counted == 0:
        warnings.append("no countable classified cells: percentages are undefined")
    if n_uncountable:
        warnings.append(f"{n_uncountable} uncountable cell(s) excluded from the count")
    if n_unclassified:
        warnings.append(f"{n_unclassified} countable cell(s) without a class excluded from the count")
    return tuple(warnings)
