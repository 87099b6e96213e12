"""COCO reader: `annotations/*.json` (or one given JSON file) with the images they name.

An image's `file_name` is looked up, in order, as `images/<split>/<name>` (this platform's exports), `images/<name>`,
`<split>/<name>` (COCO's own train2017/ layout), next to the JSON file, and at the dataset root; `<split>` is the
JSON file name without its `instances_` prefix; then by its file name in the image folder, when one is given
(`image_refs`: absolute paths, URLs, Label Studio's `/data/upload/...`). The boxes of an image that cannot be found
are counted under that one problem. The image's split is the JSON file's (instances_train2017.json: train).
Boxes keep COCO's [x, y, width, height] in pixels. Crowd regions
(iscrowd 1) are not cells: they are skipped with a warning.
"""

from __future__ import annotations

import dataclasses
import json
import math
import posixpath
from collections import Counter, defaultdict
from typing import Any

from annotations.interchange.archive import DatasetFiles, UnsafeArchive, join
from annotations.interchange.dataset import ForeignBox, ForeignDataset, ForeignImage, split_name
from annotations.interchange.image_refs import ImageLookup, ImageNotFound, reference_file_name
from annotations.interchange.problems import Problem
from annotations.taxonomy import NUM_CLASSES


def coco_json_files(names: list[str]) -> list[str]:
    """The annotation files of a COCO dataset: those in an `annotations/` folder, else the top-level .json files."""
    in_folder = [
        name
        for name in names
        if name.endswith(".json") and posixpath.basename(posixpath.dirname(name)) == "annotations"
    ]
    return in_folder or [name for name in names if name.endswith(".json") and "/" not in name]


def _split_of(json_name: str) -> str:
    return posixpath.splitext(posixpath.basename(json_name))[0].removeprefix("instances_")


def _image_places(json_name: str, file_name: str) -> tuple[str, ...]:
    json_dir = posixpath.dirname(json_name)
    root = posixpath.dirname(json_dir) if posixpath.basename(json_dir) == "annotations" else json_dir
    split = _split_of(json_name)
    return (
        join(root, "images", split, file_name),
        join(root, "images", file_name),
        join(root, split, file_name),
        join(json_dir, file_name),
        join(root, file_name),
    )


_NUMBERS = (int, float)  # exact types: a bool is an int, and no coordinate


def _bbox(value: Any) -> tuple[float, float, float, float] | str:
    if type(value) is not list or len(value) != 4:
        return "bbox must be a list [x, y, width, height]"
    x, y, w, h = value
    if not (type(x) in _NUMBERS and type(y) in _NUMBERS and type(w) in _NUMBERS and type(h) in _NUMBERS):
        return "bbox values must be finite numbers"
    if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(w) and math.isfinite(h)):
        return "bbox values must be finite numbers"
    if w <= 0 or h <= 0:
        return f"bbox {value} has no area"
    return float(x), float(y), float(w), float(h)


_ID_TYPES = (int, str)  # exact types: JSON gives no subclasses, and a bool is no id


def _id(value: Any) -> int | str | None:
    """A COCO id (a number or a string); anything else (a list, an object, a float) names nothing."""
    return value if type(value) in _ID_TYPES else None


def _carried_class(annotation: dict[str, Any]) -> int | None:
    value = annotation.get("cell_class")
    return value if type(value) is int and 0 <= value < NUM_CLASSES else None


def _provenance(data: dict[str, Any], result: ForeignDataset) -> None:
    """The dataset's own licence and source: COCO `licenses` (names, or the URL) and `info` (url, description)."""
    info: Any = data.get("info")
    info = info if isinstance(info, dict) else {}
    licenses = [item for item in data.get("licenses") or [] if isinstance(item, dict)]
    names = sorted({str(item.get("name") or item.get("url") or "").strip() for item in licenses} - {""})
    found = {
        "license": "; ".join(names),
        "source_url": str(info.get("url") or "").strip(),
        "description": str(info.get("description") or "").strip(),
    }
    for key, value in found.items():
        if value and not result.provenance.get(key):
            result.provenance[key] = value[:500]


def _read_one(json_name: str, data: Any, lookup: ImageLookup, result: ForeignDataset, seen: dict[str, str]) -> None:
    problems, warnings = result.problems, result.warnings
    if not isinstance(data, dict) or not all(
        isinstance(data.get(key), list) for key in ("images", "annotations", "categories")
    ):
        problems.append(Problem(json_name, "not a COCO dataset: it needs the lists images, annotations and categories"))
        return
    categories = {
        _id(c.get("id")): str(c.get("name", ""))
        for c in data["categories"]
        if isinstance(c, dict) and _id(c.get("id")) is not None
    }
    split = split_name(_split_of(json_name))
    _provenance(data, result)
    images: dict[Any, ForeignImage] = {}
    refused: dict[Any, int] = {}  # image id -> index of its problem, which counts the boxes left without an image
    for index, image in enumerate(data["images"]):
        file_name = image.get("file_name") if isinstance(image, dict) else None
        if not isinstance(file_name, str) or _id(image.get("id")) is None:
            reason = f"images[{index}]: an image needs an id (a number or a string) and a file_name"
            problems.append(Problem(json_name, reason, kind="image without an id or a file_name"))
            continue
        try:
            path = lookup.find(file_name, _image_places(json_name, file_name))
        except ImageNotFound as exc:
            refused[image["id"]] = len(problems)
            reason = f"images[{index}]: file_name {exc.reason}"
            problems.append(Problem(json_name, reason, kind=exc.kind, image=reference_file_name(file_name)))
            continue
        if path in seen:
            refused[image["id"]] = len(problems)
            reason = f"images[{index}]: {file_name} is already listed by {seen[path]}"
            problems.append(Problem(json_name, reason, kind="image listed twice", image=posixpath.basename(path)))
            continue
        seen[path] = json_name
        width, height = image.get("width"), image.get("height")
        images[image["id"]] = ForeignImage(
            key=posixpath.splitext(posixpath.basename(file_name))[0],
            image_path=path,
            annotation_file=json_name,
            declared_width=width if isinstance(width, int) else None,
            declared_height=height if isinstance(height, int) else None,
            aliases=(posixpath.basename(file_name), str(image["id"])),
            split=split,
        )
    boxes: dict[Any, list[ForeignBox]] = defaultdict(list)
    left_without_image: Counter[int] = Counter()
    for index, annotation in enumerate(data["annotations"]):
        image_id = _id(annotation.get("image_id")) if isinstance(annotation, dict) else None
        if image_id in refused:
            left_without_image[refused[image_id]] += 1  # counted under the image's problem, not listed again
            continue
        if image_id not in images:
            reason = f"annotations[{index}]: image_id names no image of this file"
            problems.append(Problem(json_name, reason, kind="image_id names no image of this file", boxes=1))
            continue
        if annotation.get("iscrowd", 0):
            reason = f"annotations[{index}]: a crowd region (iscrowd 1) is not a cell; skipped"
            kind = "crowd region (iscrowd 1), not a cell; skipped"
            warnings.append(Problem(json_name, reason, kind=kind, image=images[image_id].name, boxes=1))
            continue
        label = categories.get(_id(annotation.get("category_id")))
        if label is None:
            kind = f"category_id {annotation.get('category_id')!r} is not in categories"
            reason = f"annotations[{index}]: {kind}"
            problems.append(Problem(json_name, reason, kind=kind, image=images[image_id].name, boxes=1))
            continue
        bbox = _bbox(annotation.get("bbox"))
        ref = f"annotations[{index}] (id {annotation.get('id')}, {label})"
        if isinstance(bbox, str):
            boxes[image_id].append(ForeignBox(label, error=bbox, ref=ref))
        else:
            boxes[image_id].append(ForeignBox(label, *bbox, cell_class=_carried_class(annotation), ref=ref))
    for problem_index, count in left_without_image.items():
        problems[problem_index] = dataclasses.replace(problems[problem_index], boxes=count)
    for image_id, image in images.items():
        image.boxes = boxes.get(image_id, [])
        result.images.append(image)


def coco_read(files: DatasetFiles, lookup: ImageLookup, *, json_names: list[str] | None = None) -> ForeignDataset:
    names = files.names()
    result = ForeignDataset([], [])
    json_names = json_names or coco_json_files(names)
    if not json_names:
        result.problems.append(
            Problem(files.label, "no COCO annotation file (annotations/*.json or a top-level .json)")
        )
        return result
    seen: dict[str, str] = {}
    for json_name in json_names:
        try:
            data = json.loads(files.read(json_name))
        except UnsafeArchive as exc:
            result.problems.extend(exc.problems)
            continue
        except (ValueError, UnicodeDecodeError) as exc:
            result.problems.append(Problem(json_name, f"not valid JSON ({exc})"))
            continue
        except RecursionError:
            result.problems.append(Problem(json_name, "not valid JSON (nested too deeply)"))
            continue
        _read_one(json_name, data, lookup, result, seen)
    return result
