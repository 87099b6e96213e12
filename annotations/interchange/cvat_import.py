"""CVAT for images 1.1 reader: one XML file (`annotations.xml`, or the only top-level .xml) of `<image>` elements
with `<box label xtl ytl xbr ybr>` children, images under `images/<name>` (CVAT's export), `<name>`, or found by file
name in the image folder when one is given.

Boxes are pixel corners (CVAT's continuous coordinates: x = xtl, width = xbr - xtl). A rotated box is a problem (a
cell box is axis-aligned); other shapes (polygons, points, tags) are skipped with a warning. The image's `subset`
(CVAT's task subsets: Train, Validation, Test) is its split. A box's `cell_class` attribute (this platform's exports
write it on uncountable cells) is kept. CVAT for video (`<track>`) is refused. XML is parsed with defusedxml and
DTDs are refused.
"""

from __future__ import annotations

import math
import posixpath
import xml.etree.ElementTree as ET

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from annotations.interchange.archive import DatasetFiles, UnsafeArchive, join
from annotations.interchange.dataset import ForeignBox, ForeignDataset, ForeignImage, split_name
from annotations.interchange.image_refs import ImageLookup, ImageNotFound, reference_file_name
from annotations.interchange.problems import Problem
from annotations.taxonomy import NUM_CLASSES

OTHER_SHAPES = ("polygon", "polyline", "points", "ellipse", "cuboid", "mask", "skeleton", "tag")
ROTATED_KIND = "rotated box (cells are axis-aligned boxes)"
SHAPE_KIND = "shape other than a box; skipped"


def cvat_xml_file(names: list[str]) -> str | None:
    top = [name for name in names if name.lower().endswith(".xml") and "/" not in name]
    named = [name for name in names if posixpath.basename(name) == "annotations.xml"]
    if named:
        return sorted(named, key=lambda name: name.count("/"))[0]
    return top[0] if len(top) == 1 else None


def _float(element: ET.Element, key: str) -> float:
    value = float(element.get(key, "nan"))
    if not math.isfinite(value):
        raise ValueError(key)
    return value


def _attributes(box: ET.Element) -> dict[str, str]:
    return {item.get("name", ""): (item.text or "").strip() for item in box.findall("attribute")}


def _cell_class(attributes: dict[str, str]) -> int | None:
    text = attributes.get("cell_class", "")
    return int(text) if text.isdigit() and int(text) < NUM_CLASSES else None


def _box(box: ET.Element, image: str, index: int, problems: list[Problem], xml_name: str) -> ForeignBox | None:
    label = box.get("label", "")
    ref = f"box {index} ({label})"
    try:
        rotation = float(box.get("rotation", "0") or 0)
    except ValueError:
        rotation = math.nan
    if rotation % 360 != 0:
        reason = f"{image}: {ref} is rotated by {box.get('rotation')} degrees"
        problems.append(Problem(xml_name, reason, ROTATED_KIND, image, boxes=1))
        return None
    try:
        xtl, ytl, xbr, ybr = (_float(box, key) for key in ("xtl", "ytl", "xbr", "ybr"))
    except ValueError as exc:
        return ForeignBox(label, error=f"{exc.args[0]} is missing or not a number", ref=ref)
    if xbr <= xtl or ybr <= ytl:
        return ForeignBox(label, error=f"the box ({xtl:g}, {ytl:g}) - ({xbr:g}, {ybr:g}) has no area", ref=ref)
    return ForeignBox(label, xtl, ytl, xbr - xtl, ybr - ytl, cell_class=_cell_class(_attributes(box)), ref=ref)


def _dimension(element: ET.Element, key: str) -> int | None:
    try:
        return int(element.get(key, ""))
    except ValueError:
        return None


def cvat_read(files: DatasetFiles, lookup: ImageLookup) -> ForeignDataset:
    result = ForeignDataset([], [])
    problems = result.problems
    xml_name = cvat_xml_file(files.names())
    if xml_name is None:
        problems.append(Problem(files.label, "no CVAT annotations.xml (nor one top-level .xml file)"))
        return result
    try:
        document = fromstring(files.read(xml_name), forbid_dtd=True)
    except UnsafeArchive as exc:
        problems.extend(exc.problems)
        return result
    except DefusedXmlException as exc:
        problems.append(Problem(xml_name, f"refused: the XML declares a DTD or entities ({type(exc).__name__})"))
        return result
    except ET.ParseError as exc:
        problems.append(Problem(xml_name, f"not well-formed XML ({exc})"))
        return result
    if document.tag != "annotations":
        problems.append(Problem(xml_name, f"not CVAT for images: the root is <{document.tag}>, not <annotations>"))
        return result
    if document.find("track") is not None:
        problems.append(Problem(xml_name, "CVAT for video (tracks) is not supported; export as CVAT for images 1.1"))
        return result
    root = posixpath.dirname(xml_name)
    for image in document.iter("image"):
        name = image.get("name", "")
        file_name = posixpath.basename(name) or name
        elements = image.findall("box")
        try:
            path = lookup.find(name, [join(root, "images", name), join(root, name), join(root, "images", file_name)])
        except ImageNotFound as exc:
            reason = f"image {name!r}: {exc.reason}"
            problems.append(Problem(xml_name, reason, exc.kind, reference_file_name(name), boxes=len(elements)))
            continue
        shown = posixpath.basename(path)
        boxes = [
            box for index, element in enumerate(elements) if (box := _box(element, shown, index, problems, xml_name))
        ]
        others = [element.tag for element in image if element.tag in OTHER_SHAPES]
        if others:
            reason = f"{shown}: {len(others)} shape(s) other than boxes ({', '.join(sorted(set(others)))}) skipped"
            result.warnings.append(Problem(xml_name, reason, SHAPE_KIND, shown, boxes=len(others)))
        result.images.append(
            ForeignImage(
                key=posixpath.splitext(shown)[0],
                image_path=path,
                annotation_file=xml_name,
                boxes=boxes,
                declared_width=_dimension(image, "width"),
                declared_height=_dimension(image, "height"),
                aliases=(shown, image.get("id", "")),
                split=split_name(image.get("subset", "")),
            )
        )
    if not result.images and not problems:
        problems.append(Problem(xml_name, "the file lists no <image>"))
    return result
