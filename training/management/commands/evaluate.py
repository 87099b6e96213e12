"""python manage.py evaluate --model-version ID [--split test] [--snapshot ID | --current] [--plots DIR] [--json]"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aicell.errors import DomainError
from annotations.management.commands.export_coco import domain_error_text
from training.models import DatasetSnapshot, ModelVersion
from training.registry import model_version_evaluate


def _scalars(metrics: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in metrics.items():
        if isinstance(value, dict):
            rows += _scalars(value, f"{prefix}{key}.") if key != "confusion_matrix" else []
        elif not isinstance(value, list):
            rows.append((f"{prefix}{key}", value))
    return rows


class Command(BaseCommand):
    help = (
        "Evaluate a model version's checkpoints on one split: of its own training snapshot (default), of another "
        "snapshot, or of today's truth (--current). Metrics as in the registry (the paper's Table 2)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--model-version", type=int, required=True, metavar="ID")
        parser.add_argument("--split", default="test", choices=["train", "val", "test"])
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--snapshot", type=int, metavar="ID", help="a dataset snapshot (default: the version's)")
        source.add_argument("--current", action="store_true", help="today's truth (patients keep their splits)")
        parser.add_argument("--plots", type=Path, metavar="DIR", help="also write the plots into DIR")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        version = ModelVersion.objects.filter(pk=options["model_version"]).first()
        if version is None:
            raise CommandError(f"Model version {options['model_version']} does not exist.")
        snapshot = None
        if options["snapshot"] is not None:
            snapshot = DatasetSnapshot.objects.filter(pk=options["snapshot"]).first()
            if snapshot is None:
                raise CommandError(f"Dataset snapshot {options['snapshot']} does not exist.")
        try:
            report = model_version_evaluate(
                version,
                split=options["split"],
                snapshot=snapshot,
                current=options["current"],
                plots_dir=options["plots"],
            )
        except DomainError as exc:
            raise CommandError(domain_error_text(exc)) from exc
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps(report))
            return
        self.stdout.write(
            f"{version.stage} v{version.pk} ({version.architecture}) on the {report['split']} split of "
            f"{'today' if report['dataset_snapshot'] == 'current' else 'snapshot ' + str(report['dataset_snapshot'])}: "
            f"{report['fields']} fields, {report['cells']} cells"
        )
        for name, value in _scalars(report["metrics"]):
            shown = f"{value:.4f}" if isinstance(value, float) else str(value)
            self.stdout.write(f"  {name:<40} {shown}")
