"""Pascal VOC reader: `Annotations/*.xml` with their images in `JPEGImages/` (as BCCD ships them).

XML is parsed with defusedxml and DTDs are refused outright, so entity expansion ("billion laughs") and external
entities never reach the parser. VOC pixel coordinates are 1-based and inclusive (xmin=1 is the first column,
xmax=width the last), so a box becomes x = xmin - 1, width = xmax - x (the convention of the VOC devkit and
detectron2); a 0-based file (xmin = 0) is clamped at 0 rather than refused.
"""

from __future__ import annotations

import math
import posixpath
import xml.etree.ElementTree as ET

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from annotations.interchange.archive import DatasetFiles, Problem, UnsafeArchive, join
from annotations.interchange.dataset import ForeignBox, ForeignDataset, ForeignImage

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


def _image_path(files: set[str], root: str, xml_name: str, filename: str | None) -> str | None:
    folder = join(root, "JPEGImages")
    if filename and posixpath.basename(filename) == filename and join(folder, filename) in files:
        return join(folder, filename)
    stem = posixpath.splitext(posixpath.basename(xml_name))[0]
    for extension in IMAGE_EXTENSIONS:
        for candidate in (stem + extension, stem + extension.upper()):
            if join(folder, candidate) in files:
                return join(folder, candidate)
    return None


def voc_read(files: DatasetFiles) -> ForeignDataset:
    names = files.names()
    try:
        root = voc_root(names)
    except ValueError as exc:
        return ForeignDataset([], [Problem(files.label, str(exc))])
    available = set(names)
    images: list[ForeignImage] = []
    problems: list[Problem] = []
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
        image_path = _image_path(available, root, name, filename)
        if image_path is None:
            problems.append(Problem(name, f"its image {filename or '(no <filename>)'} is not in JPEGImages/"))
            continue
        stem = posixpath.splitext(posixpath.basename(image_path))[0]
        images.append(
            ForeignImage(
                key=stem,
                image_path=image_path,
                annotation_file=name,
                boxes=[_box(obj, index) for index, obj in enumerate(document.findall("object"))],
                declared_width=_dimension(document, "size/width"),
                declared_height=_dimension(document, "size/height"),
                aliases=(posixpath.basename(image_path), posixpath.splitext(posixpath.basename(name))[0]),
            )
        )
    if not images and not problems:
        problems.append(Problem(files.label, "the Annotations/ folder holds no .xml files"))
    return ForeignDataset(images, problems)
