"""What the format readers produce: images with labelled boxes in image pixels (or, for formats that store them so,
fractions of the image size), before any mapping; and the dataset's own split of each image."""

from __future__ import annotations

import csv
import functools
import io
import posixpath
from collections.abc import Callable
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
    split: str | None = None  # the dataset's own split of the image (train, val, test), when it has one
    # Boxes are fractions of the image's size (YOLO, Label Studio): scaled to pixels once the image is read.
    normalized: bool = False

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
    # What the dataset says of itself where its format has a place for it (licence, source, description).
    provenance: dict[str, str] = field(default_factory=dict)


# The dataset's split names as this platform names them (COCO's train2017, YOLO's valid, ...).
_SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}


def split_name(name: str) -> str | None:
    """The platform split a dataset's split folder, file or subset name stands for (train2017 -> train), or None."""
    text = name.strip().lower()
    return _SPLIT_NAMES.get(text) or _SPLIT_NAMES.get(text.rstrip("0123456789").rstrip("_-"))


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


def _image_key(name: str) -> str:
    stem = name.strip()
    lowered = stem.lower()
    for suffix in IMAGE_SUFFIXES:
        if lowered.endswith(suffix):
            return stem[: -len(suffix)]
    return stem


def image_key(name: str) -> str:
    """What --ids and --patients match: the file name without its directory and image extension."""
    return _image_key(posixpath.basename(name))


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


def patients_read(text: str) -> dict[str, str]:
    """A --patients CSV: a header, then `image,patient` rows (image: file name or name without extension).

    Raises ValueError naming the first malformed row or an image given twice."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or len(rows[0]) < 2 or rows[0][0].strip().lower() != "image":
        raise ValueError("the patients CSV needs a header row 'image,patient'")
    patients: dict[str, str] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise ValueError(f"row {number}: expected image,patient")
        key = image_key(row[0])
        if key in patients:
            raise ValueError(f"row {number}: image {row[0].strip()!r} is given twice")
        patients[key] = row[1].strip()
    return patients


_LICENSE_NAMES = ("license", "license.txt", "license.md", "licence", "licence.txt", "licence.md", "copying")
LICENSE_MAX_BYTES = 64 * 1024


def license_of(names: list[str], read: Callable[[str], bytes]) -> str:
    """The first line of the dataset's own LICENSE file (at its top or one folder down), e.g. "MIT License"; ""."""
    candidates = sorted(
        (name.count("/"), name)
        for name in names
        if name.count("/") <= 1 and posixpath.basename(name).lower() in _LICENSE_NAMES
    )
    for _, name in candidates:
        try:
            text = read(name)[:LICENSE_MAX_BYTES].decode("utf-8", errors="replace")
        except (OSError, ValueError):
            continue
        first = next((line.strip().lstrip("#").strip() for line in text.splitlines() if line.strip()), "")
        if first:
            return first[:200]
    return ""
