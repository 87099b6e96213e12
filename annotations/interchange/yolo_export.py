"""The YOLO writer (Ultralytics layout), streamed like the COCO one:

    data.yaml                          path, train/val/test image folders, names (index -> name, the 23 categories in
                                       category order: 0 myeloblast ... 20 other, 21 uncountable, 22 unclassified),
                                       and under `aicell` the category rule and the imported datasets' licences
    labels/<split>/<image id>.txt      one line per box: `class cx cy w h`, fractions of the image size
    images/<split>/<image id>.<ext>    the field images, metadata-free (as in the COCO export)

YOLO keeps one class per box, so countability is the class (21 uncountable); the taxonomy class an uncountable cell
may also carry has no place here (COCO, CVAT and Label Studio exports keep it).
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from typing import IO, Any

import yaml
from django.conf import settings

from annotations.interchange.coco_export import (
    ExportSummary,
    Progress,
    ProgressCallback,
    SplitSummary,
    export_start,
    image_file_name,
    write_images,
)
from annotations.interchange.coco_format import CATEGORY_ID_RULE
from annotations.interchange.export_common import BOX_COLUMNS, BOX_INDEX, CATEGORY_NAMES, images_with_cells
from annotations.interchange.export_selection import ExportPlan, export_provenance

LABEL_CHUNK_IMAGES = 200


def yolo_label_lines(cells: Sequence[Sequence[Any]], width: int, height: int) -> str:
    """A label file's text: `class cx cy w h` per cell row (CELL_COLUMNS), fractions written exactly (repr)."""
    return "".join(
        f"{BOX_INDEX[bool(countable), cell_class]} {(x + w / 2) / width!r} {(y + h / 2) / height!r} "
        f"{w / width!r} {h / height!r}\n"
        for _, _, x, y, w, h, countable, cell_class in cells
    )


def data_yaml(splits: list[str], provenance: list[dict[str, str]]) -> str:
    document: dict[str, Any] = {"path": "."}
    for split in splits:
        document[split] = f"images/{split}"
    document["nc"] = len(CATEGORY_NAMES)
    document["names"] = dict(enumerate(CATEGORY_NAMES))
    licenses = sorted({dataset["license"] for dataset in provenance if dataset["license"]})
    if licenses:
        document["license"] = "; ".join(licenses)
    urls = sorted({dataset["url"] for dataset in provenance if dataset["url"]})
    if urls:
        document["url"] = "; ".join(urls)
    document["aicell"] = {
        "categories": f"class index i = category i + 1 of the COCO export ({CATEGORY_ID_RULE})",
        "datasets": provenance,
    }
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def _write_labels(archive: zipfile.ZipFile, plan: ExportPlan, split: str, progress: Progress) -> SplitSummary:
    summary = SplitSummary()
    for (field_id, width, height, image_format, *_), cells in images_with_cells(plan, split, BOX_COLUMNS):
        name = image_file_name(field_id, image_format).rsplit(".", 1)[0]
        archive.writestr(f"labels/{split}/{name}.txt", yolo_label_lines(cells, width, height))
        summary.images += 1
        summary.annotations += len(cells)
        progress.advance(1 + len(cells))
    return summary


def yolo_export_write(plan: ExportPlan, out: IO[bytes], *, progress: ProgressCallback | None = None) -> ExportSummary:
    splits, tracker, summary = export_start(plan, progress)
    provenance = export_provenance(plan)
    level = settings.AICELL_EXPORT_ZIP_LEVEL
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
        archive.writestr("data.yaml", data_yaml(splits, provenance))
        for split in splits:
            summary.splits[split] = _write_labels(archive, plan, split, tracker)
            write_images(archive, plan, split, tracker)
    if progress:
        progress(tracker.total, tracker.total)
    return summary
