"""What every export format shares beyond the COCO writer's pieces: the category names in index order, and the
images of a split with their boxes, streamed together from two database cursors."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from annotations.interchange.coco_export import IMAGE_COLUMNS, row_chunks
from annotations.interchange.coco_format import CATEGORIES, category_id
from annotations.interchange.export_selection import CELL_COLUMNS, ExportPlan, exported_fields, instance_cells
from annotations.taxonomy import NUM_CLASSES

# Category names in category order: YOLO's class index i is CATEGORIES[i] (category id - 1 for the 21 classes).
CATEGORY_NAMES: tuple[str, ...] = tuple(str(category["name"]) for category in CATEGORIES)
CATEGORY_INDEX = {int(category["id"]): index for index, category in enumerate(CATEGORIES)}
# (countable, taxonomy class) -> class index, for every pair a cell can have.
BOX_INDEX: dict[tuple[bool, int | None], int] = {
    (countable, klass): CATEGORY_INDEX[category_id(countable, klass)]
    for countable in (True, False)
    for klass in (None, *range(NUM_CLASSES))
}
_FIELD_ID = CELL_COLUMNS.index("annotation_set__field_id")


# The columns a writer without per-box provenance needs (the first eight of CELL_COLUMNS: fetched faster).
BOX_COLUMNS = CELL_COLUMNS[:8]


def images_with_cells(
    plan: ExportPlan, split: str, columns: Sequence[str] = CELL_COLUMNS
) -> Iterator[tuple[Sequence[Any], list[Sequence[Any]]]]:
    """(image row of IMAGE_COLUMNS, its cell rows of `columns`, a prefix of CELL_COLUMNS) in image id order; two
    cursors merged, so memory holds one chunk of each and the cells of one image."""
    images = (row for chunk in row_chunks(exported_fields(plan, split).values_list(*IMAGE_COLUMNS), IMAGE_COLUMNS)
              for row in chunk)  # fmt: skip
    cells_query = instance_cells(plan, split).order_by("annotation_set__field_id", "id").values_list(*columns)
    cells = (row for chunk in row_chunks(cells_query, list(columns)) for row in chunk)
    pending = next(cells, None)
    for image in images:
        boxes: list[Sequence[Any]] = []
        while pending is not None and pending[_FIELD_ID] == image[0]:
            boxes.append(pending)
            pending = next(cells, None)
        yield image, boxes
