"""Import a dataset (COCO, Pascal VOC, YOLO, CVAT, Label Studio) from the command line (README "Interchange")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from aicell.errors import DomainError, ValidationFailed
from annotations.interchange.dataset import field_types_read, ids_read, patients_read
from annotations.interchange.dataset_import import DatasetRefused, dataset_import
from annotations.interchange.jobs import case_by_code, dataset_files_open, image_folder_open, import_options
from annotations.interchange.problems import Problem, report_csv
from annotations.management.commands.export_coco import domain_error_text
from annotations.models import Case, ImportFormat, Patient


class _DryRun(Exception):
    """Rolls back a dry run's case creation."""


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CommandError(f"{path}: cannot read the JSON file ({exc})") from None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"{path}: cannot read the text file ({exc})") from None


class Command(BaseCommand):
    help = (
        "Import a dataset (folder or zip) into a case, or into one patient per image or per the patients file: all "
        "of it in one transaction, or nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="dataset folder, .zip, or (COCO) one .json file")
        parser.add_argument("--format", required=True, choices=ImportFormat.values)
        parser.add_argument(
            "--case",
            metavar="CODE",
            help="the case the fields go into; with --patient-per-image the prefix of the patients' codes",
        )
        parser.add_argument("--create-case", action="store_true", help="create the case (needs --patient)")
        parser.add_argument("--patient", metavar="CODE", help="with --create-case: the case's patient (made if new)")
        parser.add_argument("--smear", default="S1", metavar="CODE", help="smear code in the case (made if missing)")
        parser.add_argument("--as", dest="as_", default="consensus", metavar="consensus|annotator:USERNAME")
        parser.add_argument("--label-map", type=Path, help="label map JSON (e.g. demo/bccd_label_map.json)")
        parser.add_argument("--ids", type=Path, help="file naming the images to import, one per line")
        parser.add_argument("--types-csv", type=Path, help="CSV image,types of per-field cell types")
        parser.add_argument("--source-name", default="", help="dataset name recorded on imported truth sets")
        parser.add_argument(
            "--images",
            type=Path,
            metavar="DIR",
            help="folder where images the dataset names by absolute path or URL (e.g. Label Studio's "
            "/data/upload/...) are found by file name",
        )
        parser.add_argument(
            "--report", type=Path, metavar="FILE", help="write every problem (or, imported, every note) as CSV"
        )
        parser.add_argument(
            "--split-from-dataset",
            action="store_true",
            help="pin each image's split in the dataset (instances_<split>.json, ImageSets, images/<split>/, subsets) "
            "on its patient",
        )
        placement = parser.add_mutually_exclusive_group()
        placement.add_argument(
            "--patient-per-image",
            action="store_true",
            help="each image its own patient and case, coded <CASE>-<image name>",
        )
        placement.add_argument(
            "--patients", type=Path, metavar="FILE", help="CSV image,patient: each patient gets a case of its code"
        )
        parser.add_argument("--license", default="", help="the dataset's licence (else read from the dataset)")
        parser.add_argument("--source-url", default="", help="where the dataset comes from")
        parser.add_argument("--dry-run", action="store_true", help="check and report; write nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with transaction.atomic():
                report = self._import(options)
                if options["dry_run"]:
                    raise _DryRun
        except _DryRun:
            pass
        except DatasetRefused as exc:
            self._write_report(options["report"], exc.report_rows)
            raise CommandError(domain_error_text(exc)) from None
        except DomainError as exc:
            raise CommandError(domain_error_text(exc)) from None
        self._write_report(options["report"], report.notes())
        self.stdout.write(json.dumps(report.to_dict(), indent=2))

    def _write_report(self, path: Path | None, rows: list[tuple[str, Problem]]) -> None:
        if path is None:
            return
        try:
            path.write_text(report_csv(rows), encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"{path}: cannot write the report ({exc})") from None
        self.stderr.write(f"report: {len(rows)} row(s) written to {path}")

    def _import(self, options: dict[str, Any]) -> Any:
        path: Path = options["path"]
        files, coco_json = dataset_files_open(path)
        field_types = patients = None
        if options["patients"]:
            try:
                patients = patients_read(_read_text(options["patients"]))
            except ValueError as exc:
                raise CommandError(f"{options['patients']}: {exc}") from None
        if options["types_csv"]:
            try:
                field_types = field_types_read(_read_text(options["types_csv"]))
            except ValueError as exc:
                raise CommandError(f"{options['types_csv']}: {exc}") from None
        import_opts = import_options(
            import_format=options["format"],
            case=None if options["patient_per_image"] or patients is not None else self._case(options),
            smear=options["smear"],
            as_=options["as_"],
            label_map=_read_json(options["label_map"]) if options["label_map"] else None,
            ids=ids_read(_read_text(options["ids"])) if options["ids"] else None,
            field_types=field_types,
            source_name=options["source_name"],
            dry_run=options["dry_run"],
            coco_json=coco_json,
            images=image_folder_open(options["images"]) if options["images"] else None,
            split_from_dataset=options["split_from_dataset"],
            patient_per_image=options["patient_per_image"],
            patients=patients,
            patient_prefix=options["case"] or "",
            provenance={"license": options["license"], "source_url": options["source_url"]},
        )
        return dataset_import(files, import_opts, actor=None)

    def _case(self, options: dict[str, Any]) -> Case:
        if not options["case"]:
            raise ValidationFailed(
                "Name the case (--case CODE), or give --patient-per-image or --patients.", field="case"
            )
        if not options["create_case"]:
            return case_by_code(options["case"])
        if not options["patient"]:
            raise ValidationFailed("--create-case needs --patient CODE.", field="patient")
        if Case.objects.filter(code=options["case"]).exists():
            raise ValidationFailed(f"Case {options['case']!r} exists already; drop --create-case.", field="case")
        patient = Patient.objects.filter(code=options["patient"]).first() or Patient(code=options["patient"])
        case = Case(patient=patient, code=options["case"])
        try:
            patient.full_clean()
            patient.save()
            case.patient = patient
            case.full_clean()
        except DjangoValidationError as exc:
            raise ValidationFailed(f"Cannot create the case: {'; '.join(exc.messages)}", field="case") from None
        case.save()
        return case
