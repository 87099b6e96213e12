"""The interchange formats: one registry of what each format can do. A format is a value of
`annotations.models.ImportFormat`; it is read through its reader in `dataset_import.FORMAT_READERS` and written
through its writer here. The command line (`import_dataset --format`, `export_coco --format`), the API (`format`) and
the Exports page offer what these two registries hold."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import IO

from aicell.errors import ValidationFailed
from annotations.interchange.coco_export import ExportSummary, ProgressCallback, coco_export_write
from annotations.interchange.cvat_export import cvat_export_write
from annotations.interchange.dataset_import import FORMAT_READERS
from annotations.interchange.export_selection import ExportPlan
from annotations.interchange.labelstudio_export import labelstudio_export_write
from annotations.interchange.yolo_export import yolo_export_write
from annotations.models import ImportFormat

Writer = Callable[..., ExportSummary]  # (plan, out, *, progress=None) -> summary

EXPORT_WRITERS: Mapping[str, Writer] = {
    ImportFormat.COCO: coco_export_write,
    ImportFormat.YOLO: yolo_export_write,
    ImportFormat.CVAT: cvat_export_write,
    ImportFormat.LABEL_STUDIO: labelstudio_export_write,
}
IMPORT_FORMATS: tuple[str, ...] = tuple(FORMAT_READERS)
EXPORT_FORMATS: tuple[str, ...] = tuple(EXPORT_WRITERS)


def export_write(
    export_format: str, plan: ExportPlan, out: IO[bytes], *, progress: ProgressCallback | None = None
) -> ExportSummary:
    """Write the plan's export in the format into `out`."""
    writer = EXPORT_WRITERS.get(export_format)
    if writer is None:
        raise ValidationFailed(
            f"format must be one of {', '.join(EXPORT_FORMATS)}, not {export_format!r}.", field="format"
        )
    return writer(plan, out, progress=progress)
