"""python manage.py import_weights FILE --arch ARCH [--name NAME] [--source TEXT] [--json]"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aicell.errors import DomainError
from annotations.management.commands.export_coco import domain_error_text
from training.models import StartingPointKind
from training.starting_points import starting_point_register


class Command(BaseCommand):
    help = (
        "Register a local weight file (a timm or torchvision state dict, bare or wrapped in {'state_dict': ...} / "
        "{'model': ...}) as a starting point for training: it is checked against ARCH (a timm classifier, or a "
        "detector whose backbone it initialises) and the matched / missing / unexpected keys are reported. "
        "Profiles name it with `init: imagenet-local:NAME`. Never downloads anything."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--arch", required=True, help="timm classifier arch or detector arch (nets.DETECTOR_ARCHS)")
        parser.add_argument("--name", help="the starting point's name (default: ARCH-<file stem>)")
        parser.add_argument("--source", default="", help="where the weights came from, in words")
        parser.add_argument("--json", action="store_true", help="print the registered starting point as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        name = options["name"] or f"{options['arch']}-{path.stem}"
        try:
            point = starting_point_register(
                name=name,
                arch=options["arch"],
                state_dict_path=path,
                kind=StartingPointKind.IMPORTED,
                source=options["source"] or f"imported from {path.name}",
            )
        except DomainError as error:
            raise CommandError(domain_error_text(error)) from None
        keys = point.keys
        if options["json"]:
            body = {"name": point.name, "arch": point.arch, "sha256": point.sha256, "file": point.file, "keys": keys}
            self.stdout.write(json.dumps(body))
            return
        self.stdout.write(f"registered starting point {point.name} ({point.arch}), sha256 {point.sha256[:16]}")
        self.stdout.write(
            f"  {keys['matched']} tensors matched ({keys['layout']}), {len(keys['missing'])} missing "
            f"(random init), {len(keys['unexpected'])} unexpected (ignored), "
            f"{len(keys['skipped_head'])} head tensors left out"
        )
        for label in ("missing", "unexpected"):
            if keys[label]:
                shown = ", ".join(keys[label][:8]) + (" ..." if len(keys[label]) > 8 else "")
                self.stdout.write(f"  {label}: {shown}")
        self.stdout.write(f"  use it in a profile: init: imagenet-local:{point.name}")
