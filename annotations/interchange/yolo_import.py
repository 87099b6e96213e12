"""YOLO reader (Ultralytics layout): images under an `images/` folder, each with its label file at the same place
under `labels/` (`images/train/a.jpg` -> `labels/train/a.txt`; Roboflow's `train/images/a.jpg` ->
`train/labels/a.txt`), class names from `data.yaml` (`names`: a list or {index: name}) or, without one, from
`classes.txt` / `obj.names` (one name a line).

A label line is `class cx cy w h`: the box's centre and size as fractions of the image's width and height, scaled to
pixels once the image is read (`ForeignImage.normalized`). A line of any other shape (a polygon, a score) is a
problem, as is a class index the names do not list; an image without a label file has no boxes (YOLO's background
image) and a label file without its image is a problem. The split is the folder beside `images` (`images/val/`,
`valid/images/`). YAML is read with `safe_load`, and anchors and aliases (the YAML "billion laughs") are refused.
"""

from __future__ import annotations

import math
import posixpath
from typing import Any

import yaml

from annotations.interchange.archive import DatasetFiles, UnsafeArchive
from annotations.interchange.dataset import IMAGE_SUFFIXES, ForeignBox, ForeignDataset, ForeignImage, split_name
from annotations.interchange.image_refs import ImageLookup
from annotations.interchange.problems import Problem

YAML_NAMES = ("data.yaml", "dataset.yaml", "data.yml", "dataset.yml")
NAMES_FILES = ("classes.txt", "obj.names", "classes.names")
UNKNOWN_CLASS_KIND = "class index not in the class names"
BAD_LINE_KIND = "label line is not 'class cx cy w h'"
NO_IMAGE_KIND = "label file without its image"


class YamlRefused(ValueError):
    pass


def yaml_safe_read(data: bytes) -> Any:
    """safe_load, after refusing anchors and aliases (no expansion bombs) and anything but plain data."""
    try:
        text = data.decode("utf-8-sig")
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise YamlRefused("YAML anchors and aliases are refused")
        return yaml.safe_load(text)
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
        raise YamlRefused(f"not readable YAML ({type(exc).__name__})") from None


def _shallowest(names: list[str], wanted: tuple[str, ...]) -> str | None:
    found = sorted((name.count("/"), name) for name in names if posixpath.basename(name).lower() in wanted)
    return found[0][1] if found else None


def _class_names(files: DatasetFiles, names: list[str], problems: list[Problem]) -> tuple[dict[int, str], str, Any]:
    """Index -> name, where they were read, and the data.yaml document (None without one)."""
    yaml_name = _shallowest(names, YAML_NAMES)
    if yaml_name is not None:
        try:
            document = yaml_safe_read(files.read(yaml_name))
        except YamlRefused as exc:
            problems.append(Problem(yaml_name, str(exc)))
            return {}, yaml_name, None
        except UnsafeArchive as exc:
            problems.extend(exc.problems)
            return {}, yaml_name, None
        raw = document.get("names") if isinstance(document, dict) else None
        if isinstance(raw, list) and all(isinstance(name, str | int) for name in raw):
            return {index: str(name) for index, name in enumerate(raw)}, yaml_name, document
        if isinstance(raw, dict) and all(type(key) is int for key in raw):
            return {key: str(value) for key, value in raw.items()}, yaml_name, document
        problems.append(Problem(yaml_name, "names must be a list of class names or a mapping index -> name"))
        return {}, yaml_name, document
    names_file = _shallowest(names, NAMES_FILES)
    if names_file is None:
        problems.append(Problem(files.label, "no data.yaml (names) nor classes.txt: the class names are unknown"))
        return {}, "", None
    try:
        text = files.read(names_file).decode("utf-8-sig")
    except (UnsafeArchive, UnicodeDecodeError) as exc:
        problems.append(Problem(names_file, f"unreadable class names ({exc})"))
        return {}, names_file, None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return dict(enumerate(lines)), names_file, None


def _label_path(image_path: str) -> str | None:
    """Where YOLO keeps the image's labels: its last `images` folder replaced by `labels`, extension `.txt`."""
    parts = image_path.split("/")
    if "images" not in parts[:-1]:
        return None
    index = len(parts) - 2 - parts[:-1][::-1].index("images")
    parts[index] = "labels"
    return posixpath.splitext("/".join(parts))[0] + ".txt"


def _split_of(path: str) -> str | None:
    """The split folder beside `images`/`labels` (images/val/a.jpg, valid/images/a.jpg)."""
    parts = path.split("/")[:-1]
    for index, part in enumerate(parts):
        if part in ("images", "labels"):
            after = split_name(parts[index + 1]) if index + 1 < len(parts) else None
            before = split_name(parts[index - 1]) if index > 0 else None
            return after or before
    return None


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _boxes(
    label_file: str, text: str, classes: dict[int, str], image: str, problems: list[Problem]
) -> list[ForeignBox]:
    boxes: list[ForeignBox] = []
    unknown: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        ref = f"line {number}"
        if len(tokens) != 5:
            shape = "a polygon (segmentation)" if len(tokens) > 6 else f"{len(tokens)} values"
            reason = f"{image}: {ref}: {shape}, not 'class cx cy w h'"
            problems.append(Problem(label_file, reason, BAD_LINE_KIND, image, boxes=1))
            continue
        try:
            index = int(tokens[0])
            cx, cy, w, h = (_number(token) for token in tokens[1:])
        except ValueError:
            reason = f"{image}: {ref}: {line.strip()!r} is not a class index and four numbers"
            problems.append(Problem(label_file, reason, BAD_LINE_KIND, image, boxes=1))
            continue
        if index not in classes:
            unknown[tokens[0]] = unknown.get(tokens[0], 0) + 1
            continue
        label = classes[index]
        ref = f"{ref} ({label})"
        if w <= 0 or h <= 0:
            boxes.append(ForeignBox(label, error=f"the box has no area (w {w:g}, h {h:g})", ref=ref))
            continue
        boxes.append(ForeignBox(label, cx - w / 2, cy - h / 2, w, h, ref=ref))
    for index_text, count in unknown.items():
        reason = f"{image}: class {index_text} ({count} box(es)) is not in the class names"
        problems.append(Problem(label_file, reason, f"class {index_text} is not in the class names", image, count))
    return boxes


def yolo_read(files: DatasetFiles, lookup: ImageLookup) -> ForeignDataset:
    names = files.names()
    result = ForeignDataset([], [])
    problems = result.problems
    classes, names_file, document = _class_names(files, names, problems)
    if isinstance(document, dict):
        for key in ("license", "url", "description"):
            value = document.get(key) or (document.get("roboflow") or {}).get(key)
            if isinstance(value, str) and value.strip():
                result.provenance["source_url" if key == "url" else key] = value.strip()[:500]
    if not classes and problems:
        return result
    labels_used: set[str] = set()
    available = set(names)
    for name in names:
        if not name.lower().endswith(IMAGE_SUFFIXES):
            continue
        label_file = _label_path(name)
        if label_file is None:
            continue
        image = posixpath.basename(name)
        boxes: list[ForeignBox] = []
        if label_file in available:
            labels_used.add(label_file)
            try:
                text = files.read(label_file).decode("utf-8-sig")
            except (UnsafeArchive, UnicodeDecodeError) as exc:
                problems.append(Problem(label_file, f"unreadable label file ({exc})", image=image))
                continue
            boxes = _boxes(label_file, text, classes, image, problems)
        result.images.append(
            ForeignImage(
                key=posixpath.splitext(image)[0],
                image_path=lookup.find(name, [name]),
                annotation_file=label_file if label_file in available else names_file,
                boxes=boxes,
                aliases=(image,),
                split=_split_of(name),
                normalized=True,
            )
        )
    for name in names:
        if name.endswith(".txt") and "labels" in name.split("/")[:-1] and name not in labels_used:
            if posixpath.basename(name).lower() in NAMES_FILES:
                continue
            reason = "no image of this name under the matching images/ folder"
            problems.append(Problem(name, reason, NO_IMAGE_KIND, posixpath.splitext(posixpath.basename(name))[0]))
    if not result.images and not problems:
        problems.append(Problem(files.label, "no images under an images/ folder"))
    return result
