"""The 21-class bone-marrow white-cell taxonomy (DESIGN.md "Cell taxonomy").

Plain Python with no Django import, so the model code (`inference/`, `training/`) and the database seed
migration read the same list. Ids are fixed forever: exports, checkpoints and stored cells refer to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Lineage(StrEnum):
    GRANULOCYTIC = "granulocytic"
    ERYTHROID = "erythroid"
    LYMPHOID = "lymphoid"
    MONOCYTIC = "monocytic"
    MEGAKARYOCYTIC = "megakaryocytic"
    OTHER = "other"


@dataclass(frozen=True)
class CellClassSpec:
    id: int
    name: str
    lineage: Lineage
    is_blast: bool
    shortcut: str

    @property
    def slug(self) -> str:
        return self.name.replace(" ", "_").replace("-", "_")


# Shortcut keys follow the order of the list: 1-9, 0, then letters that do not clash with the
# annotator's navigation keys (see frontend keyboard map).
CELL_CLASSES: tuple[CellClassSpec, ...] = (
    CellClassSpec(0, "myeloblast", Lineage.GRANULOCYTIC, True, "1"),
    CellClassSpec(1, "promyelocyte", Lineage.GRANULOCYTIC, False, "2"),
    CellClassSpec(2, "neutrophilic myelocyte", Lineage.GRANULOCYTIC, False, "3"),
    CellClassSpec(3, "neutrophilic metamyelocyte", Lineage.GRANULOCYTIC, False, "4"),
    CellClassSpec(4, "neutrophilic band", Lineage.GRANULOCYTIC, False, "5"),
    CellClassSpec(5, "neutrophilic segmented", Lineage.GRANULOCYTIC, False, "6"),
    CellClassSpec(6, "eosinophil", Lineage.GRANULOCYTIC, False, "7"),
    CellClassSpec(7, "pro-erythroblast", Lineage.ERYTHROID, True, "8"),
    CellClassSpec(8, "basophilic erythroblast", Lineage.ERYTHROID, False, "9"),
    CellClassSpec(9, "polychromatic erythroblast", Lineage.ERYTHROID, False, "0"),
    CellClassSpec(10, "orthochromatic erythroblast", Lineage.ERYTHROID, False, "q"),
    CellClassSpec(11, "lymphoblast", Lineage.LYMPHOID, True, "w"),
    CellClassSpec(12, "lymphocyte", Lineage.LYMPHOID, False, "e"),
    CellClassSpec(13, "lymphoma cell", Lineage.LYMPHOID, False, "r"),
    CellClassSpec(14, "monoblast", Lineage.MONOCYTIC, True, "t"),
    CellClassSpec(15, "promonocyte", Lineage.MONOCYTIC, False, "y"),
    CellClassSpec(16, "monocyte", Lineage.MONOCYTIC, False, "u"),
    CellClassSpec(17, "megakaryoblast", Lineage.MEGAKARYOCYTIC, True, "i"),
    CellClassSpec(18, "promegakaryocyte", Lineage.MEGAKARYOCYTIC, False, "o"),
    CellClassSpec(19, "neuroblastoma cell", Lineage.OTHER, False, "p"),
    CellClassSpec(20, "other", Lineage.OTHER, False, "g"),
)

NUM_CLASSES = len(CELL_CLASSES)
CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in CELL_CLASSES)
BLAST_CLASS_IDS: frozenset[int] = frozenset(c.id for c in CELL_CLASSES if c.is_blast)
# Lineages whose cells make up the myeloid:erythroid ratio.
MYELOID_LINEAGES: frozenset[Lineage] = frozenset({Lineage.GRANULOCYTIC, Lineage.MONOCYTIC})
ERYTHROID_LINEAGES: frozenset[Lineage] = frozenset({Lineage.ERYTHROID})

_BY_NAME = {c.name: c for c in CELL_CLASSES}


def class_by_id(class_id: int) -> CellClassSpec:
    if not 0 <= class_id < NUM_CLASSES:
        raise KeyError(f"cell class id {class_id} is outside 0..{NUM_CLASSES - 1}")
    return CELL_CLASSES[class_id]


def class_by_name(name: str) -> CellClassSpec:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown cell class {name!r}") from None


def lineage_of(class_id: int) -> Lineage:
    return class_by_id(class_id).lineage
