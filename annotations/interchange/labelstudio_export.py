"""The Label Studio JSON writer, streamed: `tasks.json`, the list of tasks Label Studio imports (one per field:
`data.image` = `images/<split>/<image id>.<ext>`, `data.split`, the case and smear pseudonyms; one annotation whose
results are `rectanglelabels` in percent of the image, with `original_width/height`), and the images. Each result's
`meta` carries `countable`, `cell_class` (kept for uncountable cells) and `source`; each task's `meta` the
imported datasets' licences and sources. Serve the images to Label Studio (local files) or upload them, then import
tasks.json; the labelling config is `<RectangleLabels name="label" toName="image">` with the 23 category names.
"""

from __future__ import annotations

import json
import zipfile
from typing import IO, Any

from django.conf import settings

from annotations.interchange.coco_export import (
    ExportSummary,
    ProgressCallback,
    Rows,
    SplitSummary,
    export_start,
    image_file_name,
    pseudonym_key,
    write_images,
)
from annotations.interchange.coco_format import category_id
from annotations.interchange.export_common import CATEGORY_INDEX, CATEGORY_NAMES, images_with_cells
from annotations.interchange.export_selection import ExportPlan, export_provenance

_BOOL = {True: "true", False: "false"}


def labelling_config() -> str:
    labels = "".join(f'<Label value="{name}"/>' for name in CATEGORY_NAMES)
    return (
        f'<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">{labels}'
        "</RectangleLabels></View>"
    )


def _task(image: Any, cells: list[Any], split: str, rows: Rows, meta: str) -> str:
    field_id, width, height, image_format = image[:4]
    data = rows.image(image)
    results = []
    for cell in cells:
        x, y, w, h, countable, cell_class = cell[2], cell[3], cell[4], cell[5], bool(cell[6]), cell[7]
        label = json.dumps(CATEGORY_NAMES[CATEGORY_INDEX[category_id(countable, cell_class)]])
        source = rows.source(cell[8], cell[10], cell[11], cell[12])
        klass = "null" if cell_class is None else str(cell_class)
        results.append(
            f'{{"id":"c{cell[0]}","type":"rectanglelabels","from_name":"label","to_name":"image",'
            f'"original_width":{width},"original_height":{height},"image_rotation":0,'
            f'"value":{{"x":{x * 100 / width!r},"y":{y * 100 / height!r},"width":{w * 100 / width!r},'
            f'"height":{h * 100 / height!r},"rotation":0,"rectanglelabels":[{label}]}},'
            f'"meta":{{"countable":{_BOOL[countable]},"cell_class":{klass},"source":{source}}}}}'
        )
    task_data = json.dumps(
        {
            "image": f"images/{split}/{image_file_name(field_id, image_format)}",
            "split": split,
            "case": data["case"],
            "smear": data["smear"],
        },
        separators=(",", ":"),
    )
    return (
        f'{{"id":{field_id},"data":{task_data},"meta":{meta},'
        f'"annotations":[{{"id":{field_id},"result":[{",".join(results)}]}}]}}'
    )


def labelstudio_export_write(
    plan: ExportPlan, out: IO[bytes], *, progress: ProgressCallback | None = None
) -> ExportSummary:
    splits, tracker, summary = export_start(plan, progress)
    provenance = export_provenance(plan)
    licenses = "; ".join(sorted({dataset["license"] for dataset in provenance if dataset["license"]}))
    urls = "; ".join(sorted({dataset["url"] for dataset in provenance if dataset["url"]}))
    meta = json.dumps({"license": licenses, "source_url": urls} if licenses or urls else {})
    level = settings.AICELL_EXPORT_ZIP_LEVEL
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
        archive.writestr("labelling_config.xml", labelling_config())
        with archive.open("tasks.json", "w", force_zip64=True) as handle:
            handle.write(b"[")
            first = True
            for split in splits:
                rows = Rows(pseudonym_key(), split)
                split_summary = summary.splits[split] = SplitSummary()
                for image, cells in images_with_cells(plan, split):
                    handle.write((b"" if first else b",\n") + _task(image, cells, split, rows, meta).encode())
                    first = False
                    split_summary.images += 1
                    split_summary.annotations += len(cells)
                    tracker.advance(1 + len(cells))
            handle.write(b"]\n")
        for split in splits:
            write_images(archive, plan, split, tracker)
    if progress:
        progress(tracker.total, tracker.total)
    return summary
