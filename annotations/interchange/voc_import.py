"""Pascal VOC reader: `Annotations/*.xml` with their images in `JPEGImages/` (as BCCD ships them), else found by file
name in the image folder when one is given (`image_refs`).

XML is parsed with defusedxml and DTDs are refused outright, so entity expansion ("billion laughs") and external
entities never reach the parser. VOC pixel coordinates are 1-based and inclusive (xmin=1 is the first column,
xmax=width the last), so a box becomes x = xmin - 1, width = xmax - x (the convention of the VOC devkit and
detectron2); a 0-based file (xmin = 0) is clamped at 0 rather than refused.

An image's split is the list naming it: `ImageSets/Main/<split>.txt` (the VOC layout) or `ImageSets/<split>.txt`
(BCCD's), split names as `dataset.split_name` reads them (`trainval` and per-class lists are no split). An image
named by two lists of different splits is a problem.
"""

from __future__ import annotations

import math
import posixpath
import xml.etree.ElementTree as ET

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from annotations.interchange.archive import DatasetFiles, UnsafeArchive, iter_names_under, join
from annotations.interchange.dataset import ForeignBox, ForeignDataset, ForeignImage, split_name
from annotations.interchange.image_refs import ImageLookup, ImageNotFound, reference_file_name
from annotations.interchange.problems import Problem

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


def voc_root(names: list[str]) -> str:
    """The folder holding `Annotations/` (the dataset itself or one folder inside an archive)."""
    roots = sorted({name[: -len("Annotations/") - len(name.split("/")[-1])] for name in names if _is_annotation(name)})
    if len(roots) != 1:
        where = ", ".join(root or "(top level)" for root in roots) or "nowhere"
        raise ValueError(f"expected one Annotations/ folder of .xml files, found it {where}")
    return roots[0].rstrip("/")


def _is_annotation(name: str) -> bool:
    parts = name.split("/")
    return len(parts) >= 2 and parts[-2] == "Annotations" and parts[-1].lower().endswith(".xml")


def _text(element: ET.Element, path: str) -> str | None:
    found = element.find(path)
    return found.text.strip() if found is not None and found.text is not None else None


def _dimension(element: ET.Element, path: str) -> int | None:
    text = _text(element, path)
    try:
        return int(float(text)) if text is not None else None
    except (ValueError, OverflowError):  # not a number, NaN, or infinite ("1e999")
        return None


def _box(obj: ET.Element, index: int) -> ForeignBox:
    label = _text(obj, "name") or ""
    ref = f"object {index} ({label})"
    values: list[float] = []
    for key in ("xmin", "ymin", "xmax", "ymax"):
        text = _text(obj, f"bndbox/{key}")
        try:
            value = float(text) if text is not None else math.nan
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            return ForeignBox(label, error=f"bndbox/{key} is missing or not a number ({text!r})", ref=ref)
        values.append(value)
    xmin, ymin, xmax, ymax = values
    x, y = max(xmin - 1, 0.0), max(ymin - 1, 0.0)
    if xmax <= x or ymax <= y:
        return ForeignBox(label, error=f"the box ({xmin:g}, {ymin:g}) - ({xmax:g}, {ymax:g}) has no area", ref=ref)
    return ForeignBox(label, x, y, xmax - x, ymax - y, ref=ref)


def _image_places(root: str, xml_name: str, filename: str | None) -> list[str]:
    folder = join(root, "JPEGImages")
    places = [join(folder, filename)] if filename and posixpath.basename(filename) == filename else []
    stem = posixpath.splitext(posixpath.basename(xml_name))[0]
    places += [join(folder, stem + ext) for extension in IMAGE_EXTENSIONS for ext in (extension, extension.upper())]
    return places


def _image_sets(files: DatasetFiles, root: str, problems: list[Problem]) -> dict[str, str]:
    """Image stem -> split from the dataset's ImageSets lists."""
    splits: dict[str, str] = {}
    where: dict[str, str] = {}
    lists = [
        name
        for folder in (join(root, "ImageSets", "Main"), join(root, "ImageSets"))
        for name in iter_names_under(files, folder)
        if name.endswith(".txt") and split_name(posixpath.basename(name)[:-4]) is not None
    ]
    for name in lists:
        split = split_name(posixpath.basename(name)[:-4])
        assert split is not None
        try:
            text = files.read(name).decode("utf-8-sig")
        except (UnsafeArchive, UnicodeDecodeError) as exc:
            problems.append(Problem(name, f"unreadable image list ({exc})"))
            continue
        for line in text.splitlines():
            stem = line.split("#", 1)[0].strip().split(" ")[0]
            if not stem:
                continue
            if stem in splits and splits[stem] != split:
                reason = f"{stem} is in {splits[stem]} ({where[stem]}) and in {split} ({name})"
                problems.append(Problem(name, reason, kind="image in two splits of the dataset", image=stem))
                continue
            splits[stem], where[stem] = split, name
    return splits


def voc_read(files: DatasetFiles, lookup: ImageLookup) -> ForeignDataset:
    names = files.names()
    try:
        root = voc_root(names)
    except ValueError as exc:
        return ForeignDataset([], [Problem(files.label, str(exc))])
    images: list[ForeignImage] = []
    problems: list[Problem] = []
    splits = _image_sets(files, root, problems)
    for name in names:
        if not _is_annotation(name) or posixpath.dirname(name) != join(root, "Annotations"):
            continue
        try:
            document = fromstring(files.read(name), forbid_dtd=True)
        except UnsafeArchive as exc:
            problems.extend(exc.problems)
            continue
        except DefusedXmlException as exc:
            problems.append(Problem(name, f"refused: the XML declares a DTD or entities ({type(exc).__name__})"))
            continue
        except ET.ParseError as exc:
            problems.append(Problem(name, f"not well-formed XML ({exc})"))
            continue
        filename = _text(document, "filename")
        objects = document.findall("object")
        try:
            image_path = lookup.find(filename or "", _image_places(root, name, filename))
        except ImageNotFound as exc:
            reason = f"its image {filename or '(no <filename>)'} is not in JPEGImages/ ({exc.reason})"
            image = reference_file_name(filename or "")
            problems.append(Problem(name, reason, kind=exc.kind, image=image, boxes=len(objects)))
            continue
        stem = posixpath.splitext(posixpath.basename(image_path))[0]
        images.append(
            ForeignImage(
                key=stem,
                image_path=image_path,
                annotation_file=name,
                boxes=[_box(obj, index) for index, obj in enumerate(objects)],
                declared_width=_dimension(document, "size/width"),
                declared_height=_dimension(document, "size/height"),
                aliases=(posixpath.basename(image_path), posixpath.splitext(posixpath.basename(name))[0]),
                split=splits.get(posixpath.splitext(posixpath.basename(name))[0], splits.get(stem)),
            )
        )
    if not images and not problems:
        problems.append(Problem(files.label, "the Annotations/ folder holds no .xml files"))
    return ForeignDataset(images, problems)
