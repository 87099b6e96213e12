"""Export a dataset zip (COCO by default; YOLO, CVAT, Label Studio with --format) from the command line (README
"Interchange"). `export_dataset` is the same command."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aicell.errors import DomainError
from annotations.interchange.export_selection import SPLIT_ORDER, ExportRequest, ExportSource
from annotations.interchange.formats import EXPORT_FORMATS
from annotations.interchange.jobs import export_to_file
from annotations.models import Split


def domain_error_text(exc: DomainError) -> str:
    lines = [exc.message, *(f"  {error.field}: {error.reason}" for error in exc.errors if error.reason != exc.message)]
    return "\n".join(lines)


class Command(BaseCommand):
    help = (
        "Write an export into a zip: COCO (instances per split, images, predictions as results files), or YOLO, "
        "CVAT for images 1.1 or Label Studio JSON (--format)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", required=True, type=Path, help="the zip to write (replaced only when complete)")
        parser.add_argument("--format", choices=EXPORT_FORMATS, default="coco", help="the format (default: coco)")
        parser.add_argument(
            "--source",
            nargs="+",
            choices=[source.value for source in ExportSource],
            default=[ExportSource.CONSENSUS.value],
            help="what to export (default: consensus); predictions go to results/predictions_<split>.json",
        )
        parser.add_argument("--case", nargs="+", default=[], metavar="CODE", help="only these cases")
        parser.add_argument("--split", nargs="+", default=[], choices=SPLIT_ORDER, help="only these splits")
        parser.add_argument(
            "--classes", nargs="+", default=[], metavar="CLASS", help="class names, uncountable, unclassified or ids"
        )
        parser.add_argument("--model-version", type=int, help="the model version of the predictions")
        parser.add_argument(
            "--split-all",
            choices=Split.values,
            help="every image into this one split, whatever its patient's (no split is assigned); without it, "
            "patients without a split get one first, the way training snapshots assign them",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        request = ExportRequest(
            sources=tuple(options["source"]),
            cases=tuple(options["case"]),
            splits=tuple(options["split"]),
            classes=tuple(options["classes"]),
            model_version=options["model_version"],
            split_all=options["split_all"],
            format=options["format"],
        )
        out: Path = options["out"]
        out.parent.mkdir(parents=True, exist_ok=True)
        # Written beside the target and renamed at the end: a failed export never leaves a half-written zip.
        handle, scratch = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
        try:
            with os.fdopen(handle, "wb") as scratch_file:
                summary = export_to_file(request, scratch_file)
            os.replace(scratch, out)
        except DomainError as exc:
            raise CommandError(domain_error_text(exc)) from None
        finally:
            if os.path.exists(scratch):
                os.unlink(scratch)
        self.stdout.write(json.dumps({"out": str(out), **summary.to_dict()}, indent=2))
