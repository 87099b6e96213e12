"""The CVAT for images 1.1 writer, streamed: `annotations.xml` (meta with the 23 labels and their attributes, then one
`<image>` per field with its boxes) and `images/<split>/<image id>.<ext>`; an image's `name` is `<split>/<file>`
(found under `images/` as CVAT's own export keeps them) and its `subset` its split. Boxes are pixel corners
(xtl, ytl, xbr, ybr); each carries attributes `countable`, `cell_class` (kept for uncountable cells) and `source`.
CVAT has no place for a licence: the imported datasets' licences are in the COCO and YOLO exports.
"""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime
from typing import IO, Any
from xml.sax.saxutils import escape, quoteattr

from django.conf import settings

from annotations.interchange.coco_export import (
    ExportSummary,
    Progress,
    ProgressCallback,
    Rows,
    SplitSummary,
    export_start,
    image_file_name,
    pseudonym_key,
    write_images,
)
from annotations.interchange.export_common import BOX_INDEX, CATEGORY_NAMES, images_with_cells
from annotations.interchange.export_selection import ExportPlan

_ATTRIBUTES = (
    "<attributes>"
    "<attribute><name>countable</name><mutable>True</mutable><input_type>checkbox</input_type>"
    "<default_value>true</default_value><values>true\nfalse</values></attribute>"
    "<attribute><name>cell_class</name><mutable>True</mutable><input_type>text</input_type>"
    "<default_value></default_value><values></values></attribute>"
    "<attribute><name>source</name><mutable>True</mutable><input_type>text</input_type>"
    "<default_value></default_value><values></values></attribute>"
    "</attributes>"
)


LABELS = {pair: escape(CATEGORY_NAMES[index]) for pair, index in BOX_INDEX.items()}


def _meta(splits: list[str]) -> str:
    labels = "".join(
        f"<label><name>{escape(name)}</name><type>rectangle</type>{_ATTRIBUTES}</label>" for name in CATEGORY_NAMES
    )
    return (
        "<version>1.1</version><meta><task><name>AI-cell export</name><mode>annotation</mode>"
        f"<labels>{labels}</labels><subsets>{escape(chr(10).join(splits))}</subsets></task>"
        f"<dumped>{datetime.now(UTC).isoformat(timespec='seconds')}</dumped></meta>\n"
    )


def _write_split(handle: IO[bytes], plan: ExportPlan, split: str, progress: Progress, first_id: int) -> SplitSummary:
    rows = Rows(pseudonym_key(), split)
    summary = SplitSummary()
    sources: dict[tuple[Any, ...], str] = {}  # (kind, source name, annotator, model version) -> escaped text
    for (field_id, width, height, image_format, *_), cells in images_with_cells(plan, split):
        name = f"{split}/{image_file_name(field_id, image_format)}"
        parts = [
            f'<image id="{first_id + summary.images}" name={quoteattr(name)} subset="{split}" '
            f'width="{width}" height="{height}">'
        ]
        for cell in cells:
            x, y, w, h, countable, cell_class = cell[2], cell[3], cell[4], cell[5], bool(cell[6]), cell[7]
            label = LABELS[countable, cell_class]  # escaped
            key = (cell[8], cell[10], cell[11], cell[12])
            if key not in sources:
                sources[key] = escape(json.loads(rows.source(*key)))
            source = sources[key]
            parts.append(
                f'<box label="{label}" source="manual" occluded="0" xtl="{x!r}" ytl="{y!r}" '
                f'xbr="{x + w!r}" ybr="{y + h!r}" z_order="0">'
                f'<attribute name="countable">{"true" if countable else "false"}</attribute>'
                f'<attribute name="cell_class">{"" if cell_class is None else cell_class}</attribute>'
                f'<attribute name="source">{source}</attribute></box>'
            )
        parts.append("</image>\n")
        handle.write("".join(parts).encode())
        summary.images += 1
        summary.annotations += len(cells)
        progress.advance(1 + len(cells))
    return summary


def cvat_export_write(plan: ExportPlan, out: IO[bytes], *, progress: ProgressCallback | None = None) -> ExportSummary:
    splits, tracker, summary = export_start(plan, progress)
    level = settings.AICELL_EXPORT_ZIP_LEVEL
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
        with archive.open("annotations.xml", "w", force_zip64=True) as handle:
            handle.write(b'<?xml version="1.0" encoding="utf-8"?>\n<annotations>')
            handle.write(_meta(splits).encode())
            for split in splits:
                first_id = sum(split_summary.images for split_summary in summary.splits.values())
                summary.splits[split] = _write_split(handle, plan, split, tracker, first_id)
            handle.write(b"</annotations>\n")
        for split in splits:
            write_images(archive, plan, split, tracker)
    if progress:
        progress(tracker.total, tracker.total)
    return summary
