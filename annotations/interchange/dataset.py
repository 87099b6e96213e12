"""What the COCO and VOC readers produce: images with labelled boxes in image pixels, before any mapping."""

from __future__ import annotations

import csv
import functools
import io
import posixpath
from dataclasses import dataclass, field
from typing import NamedTuple

from annotations.interchange.problems import Problem


class ForeignBox(NamedTuple):
    """One labelled box of a foreign dataset; `error` says why its coordinates are unusable (None when fine).

    Boxes are checked only once their label is known to matter: an ignored label's broken box is no problem.
    (A named tuple: datasets hold hundreds of thousands of boxes, and tuples are the cheapest to build and keep.)
    """

    label: str
    x: float = 0.0
    y: float = 0.0
    width: float = 0.0
    height: float = 0.0
    error: str | None = None
    # The taxonomy class an uncountable cell of this platform's own export carried (round trips keep it).
    cell_class: int | None = None
    ref: str = ""  # where the box is in its annotation file, for messages


@dataclass
class ForeignImage:
    key: str  # what --ids matches: the file name without its extension
    image_path: str  # the image file inside the dataset
    annotation_file: str  # where its boxes were read, for messages
    boxes: list[ForeignBox] = field(default_factory=list)
    declared_width: int | None = None
    declared_height: int | None = None
    aliases: tuple[str, ...] = ()  # other names --ids may use (the file name, a COCO image id)

    def matches(self, wanted: set[str]) -> bool:
        return self.key in wanted or any(alias in wanted for alias in self.aliases)

    @functools.cached_property
    def name(self) -> str:
        """The image's file name, as problems name it."""
        return posixpath.basename(self.image_path)


@dataclass
class ForeignDataset:
    images: list[ForeignImage]
    problems: list[Problem]
    warnings: list[Problem] = field(default_factory=list)


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


def _image_key(name: str) -> str:
    stem = name.strip()
    lowered = stem.lower()
    for suffix in IMAGE_SUFFIXES:
        if lowered.endswith(suffix):
            return stem[: -len(suffix)]
    return stem


def ids_read(text: str) -> frozenset[str]:
    """An --ids file: one image per line (file name, name without extension or COCO image id); '#' comments."""
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return frozenset(line for line in lines if line)


def field_types_read(text: str) -> dict[str, list[str]]:
    """A per-field cell-type list as CSV: a header, then `image,types` rows with types joined by ';'.

    Raises ValueError naming the first malformed row.
    """
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or len(rows[0]) < 2 or rows[0][0].strip().lower() != "image":
        raise ValueError("the types CSV needs a header row 'image,<types column>'")
    types: dict[str, list[str]] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) != 2:
            raise ValueError(f"row {number} has {len(row)} columns; expected image,types")
        types[_image_key(row[0])] = [name.strip() for name in row[1].split(";") if name.strip()]
    return types
