"""Label Studio JSON reader: a JSON file (the only top-level .json, or the only one anywhere) holding the list of
tasks Label Studio exports (`[{"data": {"image": ...}, "annotations": [{"result": [...]}]}]`).

A task's image is its `data.image` (else the one `data` value naming an image file): a path inside the dataset
(`images/...`), or a Label Studio reference (`/data/upload/<project>/<8 hex>-<name>`, `/data/local-files/?d=...`, a
URL) found by file name in the image folder (`--images`, `image_refs`). Its boxes are the `rectanglelabels` results
of its one annotation that was not cancelled (a task with several annotations is a problem: which one is the truth
is not the import's to guess); `value` x, y, width, height are percentages of the image, scaled once the image is
read; `original_width/height` are checked against the image. A rotated box is a problem; other result types
(choices, text, polygons) are skipped with a warning. A result's `meta.cell_class` (this platform's exports write
it on uncountable cells) is kept; `data.split` (this platform's exports) is the image's split.
"""

from __future__ import annotations

import json
import math
import posixpath
from typing import Any

from annotations.interchange.archive import DatasetFiles, UnsafeArchive, join
from annotations.interchange.dataset import IMAGE_SUFFIXES, ForeignBox, ForeignDataset, ForeignImage, split_name
from annotations.interchange.image_refs import ImageLookup, ImageNotFound, reference_file_name
from annotations.interchange.problems import Problem
from annotations.taxonomy import NUM_CLASSES

ROTATED_KIND = "rotated box (cells are axis-aligned boxes)"
OTHER_RESULT_KIND = "result other than a rectangle; skipped"
ANNOTATIONS_KIND = "task with more than one annotation"


def labelstudio_json_file(names: list[str]) -> str | None:
    top = [name for name in names if name.endswith(".json") and "/" not in name]
    every = [name for name in names if name.endswith(".json")]
    return top[0] if len(top) == 1 else (every[0] if len(every) == 1 else None)


def _image_reference(data: Any) -> str | None:
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("image"), str):
        return str(data["image"])
    found = [value for value in data.values() if isinstance(value, str) and value.lower().endswith(IMAGE_SUFFIXES)]
    return found[0] if len(found) == 1 else None


def _number(value: Any) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise ValueError(value)
    return float(value)


def _box(result: dict[str, Any], ref: str, image: str, problems: list[Problem], json_name: str) -> ForeignBox | None:
    value: Any = result.get("value")
    value = value if isinstance(value, dict) else {}
    labels = value.get("rectanglelabels") or value.get("labels") or []
    label = str(labels[0]) if isinstance(labels, list) and len(labels) == 1 else ""
    ref = f"{ref} ({label or 'no single label'})"
    if not label:
        return ForeignBox("", error="a rectangle needs exactly one label", ref=ref)
    try:
        rotation = _number(value.get("rotation", 0) or 0)
        x, y, w, h = (_number(value.get(key)) / 100 for key in ("x", "y", "width", "height"))
    except ValueError:
        return ForeignBox(label, error="x, y, width and height must be finite numbers", ref=ref)
    if rotation % 360:
        problems.append(
            Problem(json_name, f"{image}: {ref} is rotated by {rotation:g} degrees", ROTATED_KIND, image, 1)
        )
        return None
    if w <= 0 or h <= 0:
        return ForeignBox(label, error="the box has no area", ref=ref)
    meta: Any = result.get("meta")
    cell_class = meta.get("cell_class") if isinstance(meta, dict) else None
    cell_class = cell_class if type(cell_class) is int and 0 <= cell_class < NUM_CLASSES else None
    return ForeignBox(label, x, y, w, h, cell_class=cell_class, ref=ref)


def _declared(results: list[Any], key: str) -> int | None:
    values = {result.get(key) for result in results if isinstance(result, dict) and type(result.get(key)) is int}
    return values.pop() if len(values) == 1 else None


def labelstudio_read(files: DatasetFiles, lookup: ImageLookup) -> ForeignDataset:
    result = ForeignDataset([], [])
    problems = result.problems
    json_name = labelstudio_json_file(files.names())
    if json_name is None:
        problems.append(Problem(files.label, "no Label Studio JSON export (one .json file of tasks)"))
        return result
    try:
        tasks = json.loads(files.read(json_name))
    except UnsafeArchive as exc:
        problems.extend(exc.problems)
        return result
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        problems.append(Problem(json_name, f"not valid JSON ({type(exc).__name__})"))
        return result
    if not isinstance(tasks, list):
        problems.append(Problem(json_name, "not a Label Studio export: expected a list of tasks"))
        return result
    root = posixpath.dirname(json_name)
    for index, task in enumerate(tasks):
        where = f"tasks[{index}]"
        reference = _image_reference(task.get("data") if isinstance(task, dict) else None)
        if reference is None:
            problems.append(Problem(json_name, f"{where}: no data.image", kind="task without an image"))
            continue
        annotations = [
            item for item in task.get("annotations") or [] if isinstance(item, dict) and not item.get("was_cancelled")
        ]
        results = [
            item for item in (annotations[0].get("result") or [] if annotations else []) if isinstance(item, dict)
        ]
        name = reference_file_name(reference)
        if len(annotations) > 1:
            reason = f"{where}: {len(annotations)} annotations; keep the one to import (e.g. the reviewed one)"
            problems.append(Problem(json_name, reason, ANNOTATIONS_KIND, name))
            continue
        try:
            path = lookup.find(reference, [join(root, reference), join(root, "images", name), join(root, name)])
        except ImageNotFound as exc:
            problems.append(Problem(json_name, f"{where}: {exc.reason}", exc.kind, name, boxes=len(results)))
            continue
        shown = posixpath.basename(path)
        boxes: list[ForeignBox] = []
        others = 0
        for number, item in enumerate(results):
            if item.get("type") not in ("rectanglelabels", "rectangle", "labels"):
                others += 1
                continue
            box = _box(item, f"{where}.result[{number}]", shown, problems, json_name)
            if box is not None:
                boxes.append(box)
        if others:
            reason = f"{shown}: {others} result(s) other than rectangles skipped"
            result.warnings.append(Problem(json_name, reason, OTHER_RESULT_KIND, shown, boxes=others))
        data = task["data"]
        result.images.append(
            ForeignImage(
                key=posixpath.splitext(shown)[0],
                image_path=path,
                annotation_file=json_name,
                boxes=boxes,
                declared_width=_declared(results, "original_width"),
                declared_height=_declared(results, "original_height"),
                aliases=(shown, str(task.get("id", ""))),
                split=split_name(str(data.get("split", ""))) if data.get("split") else None,
                normalized=True,
            )
        )
        meta: Any = task.get("meta")
        meta = meta if isinstance(meta, dict) else {}
        for key in ("license", "source_url"):
            if isinstance(meta.get(key), str) and meta[key] and key not in result.provenance:
                result.provenance[key] = meta[key][:500]
    if not result.images and not problems:
        problems.append(Problem(json_name, "the export holds no task"))
    return result
