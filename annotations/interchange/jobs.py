"""Export and import jobs: created by the API (checked at once, so bad requests answer 400 before anything is
queued), run by the Celery tasks of `annotations.tasks` through `aicell.jobs.job_run`."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.files import File
from django.core.files.base import ContentFile
from django.db import transaction
from kombu.exceptions import OperationalError as KombuOperationalError

from aicell.errors import FieldError, PayloadTooLarge, PermissionDenied, ValidationFailed
from aicell.jobs import job_fail, job_report_progress
from annotations.interchange.archive import ArchiveLimits, DatasetFiles, DirectoryDataset, UnsafeArchive, ZipDataset
from annotations.interchange.coco_export import ExportSummary
from annotations.interchange.dataset_import import DatasetRefused, ImportOptions, dataset_import, import_annotator
from annotations.interchange.export_selection import ExportPlan, ExportRequest, export_plan, exported_fields
from annotations.interchange.formats import EXPORT_WRITERS, export_write
from annotations.interchange.image_refs import ImageFolder
from annotations.interchange.label_map import LabelMap, LabelMapInvalid, label_map_parse
from annotations.interchange.problems import Problem, report_csv
from annotations.models import PSEUDONYM_VALIDATOR, Case, ExportJob, ImportFormat, ImportJob
from annotations.services import patient_splits_assign


def archive_limits() -> ArchiveLimits:
    return ArchiveLimits(
        max_archive_bytes=settings.AICELL_IMPORT_MAX_ARCHIVE_BYTES,
        max_entries=settings.AICELL_IMPORT_MAX_ENTRIES,
        max_total_bytes=settings.AICELL_IMPORT_MAX_EXPANDED_BYTES,
        max_entry_bytes=settings.AICELL_IMPORT_MAX_ENTRY_BYTES,
        max_ratio=settings.AICELL_IMPORT_MAX_RATIO,
    )


def refused_archive(exc: UnsafeArchive) -> ValidationFailed:
    return ValidationFailed(
        f"The archive is refused: {exc}.", errors=[FieldError(problem.file, problem.reason) for problem in exc.problems]
    )


def label_map_checked(data: Any) -> LabelMap:
    try:
        return label_map_parse(data)
    except LabelMapInvalid as exc:
        raise ValidationFailed(
            "The label map is not valid.", errors=[FieldError("label_map", reason) for reason in exc.reasons]
        ) from None


def smear_code_checked(code: str) -> str:
    try:
        PSEUDONYM_VALIDATOR(code)
    except DjangoValidationError:
        raise ValidationFailed(
            f"{code!r} is not a valid smear code (letters, digits, '.', '_', '-').", field="smear"
        ) from None
    return code


# --- export ------------------------------------------------------------------------------------------------------


def export_plan_assigning_splits(request: ExportRequest, *, user: Any = None) -> ExportPlan:
    """Check the request into a plan after giving every patient of the exported fields (whatever splits the request
    filters on) that has no split yet its split, the way training snapshots do: a fresh case exports as train, val
    and test, never "unassigned". A request with `split_all` writes nothing. A refused request assigns nothing."""
    if request.format not in EXPORT_WRITERS:
        names = ", ".join(EXPORT_WRITERS)
        raise ValidationFailed(f"format must be one of {names}, not {request.format!r}.", field="format")
    with transaction.atomic():
        assigned: dict[str, str] = {}
        if request.split_all is None:
            try:
                every_split = export_plan(dataclasses.replace(request, splits=()), user=user)
            except ValidationFailed:
                pass  # the request itself is checked below, and refused in its own words
            else:
                assigned = patient_splits_assign(fields=exported_fields(every_split))
        plan = export_plan(request, user=user)
    return dataclasses.replace(plan, splits_assigned=assigned)


def export_to_file(request: ExportRequest, out: IO[bytes], *, user: Any = None) -> ExportSummary:
    """The command line's export: check the request, then stream the zip (in the request's format) into `out`."""
    return export_write(request.format, export_plan_assigning_splits(request, user=user), out)


coco_export_to_file = export_to_file  # the name earlier callers use


def export_job_create(*, request: ExportRequest, user: Any) -> ExportJob:
    """Check the request now (a bad or empty one is refused here, not in the worker) and queue the job. Splits given
    now are kept in the job's result, and the report lists them with any given when the worker runs it."""
    with transaction.atomic():
        plan = export_plan_assigning_splits(request, user=user)
        job = ExportJob.objects.create(
            parameters=request.to_dict(),
            result={"splits_assigned": plan.splits_assigned},
            created_by=user,
            message="waiting for a worker",
        )
        transaction.on_commit(lambda: _enqueue(ExportJob, job.pk))
    job.refresh_from_db()
    return job


def _enqueue(job_model: type[ExportJob] | type[ImportJob], job_id: int) -> None:
    """Send the job's task; when the broker cannot take it, the job fails at once instead of waiting forever."""
    from annotations import tasks  # the tasks module imports this one

    task = tasks.export_dataset if job_model is ExportJob else tasks.import_dataset
    try:
        task.delay(job_id)
    except (KombuOperationalError, OSError) as exc:
        job_fail(job_model.objects.get(pk=job_id), f"the task queue is unreachable ({exc}); ask again later")


def export_job_run(job: ExportJob) -> dict[str, Any]:
    """Write the job's export into storage (exports/<random>.zip); progress and cancel through aicell.jobs."""
    if job.created_by is None:
        raise PermissionDenied("The user who asked for this export no longer exists.")
    # Checked again: roles, cases, predictions and patients may have changed since the request was queued.
    request = ExportRequest.from_dict(job.parameters)
    request_format = request.format
    plan = export_plan_assigning_splits(request, user=job.created_by)
    plan = dataclasses.replace(plan, splits_assigned={**job.result.get("splits_assigned", {}), **plan.splits_assigned})
    settings.AICELL_TMP_DIR.mkdir(parents=True, exist_ok=True)

    def progress(done: int, total: int) -> None:
        job_report_progress(job, 95 * done / max(total, 1), f"written {done:,} of {total:,} images and boxes")

    with tempfile.TemporaryFile(dir=settings.AICELL_TMP_DIR, suffix=".zip") as scratch:
        summary = export_write(request_format, plan, scratch, progress=progress)
        size = scratch.seek(0, os.SEEK_END)
        scratch.seek(0)
        job_report_progress(job, 97, "storing the zip")
        job.file.save("export.zip", File(scratch), save=False)
    ExportJob.objects.filter(pk=job.pk).update(file=job.file.name)
    return {**summary.to_dict(), "bytes": size}


# --- import ------------------------------------------------------------------------------------------------------


def dataset_files_open(path: Path) -> tuple[DatasetFiles, list[str] | None]:
    """What the command line's PATH names: a folder, a zip, or one COCO .json file (its folder holds the images).
    Returns the files and, for a .json file, the one annotation file to read."""
    try:
        if path.is_dir():
            return DirectoryDataset(path), None
        if path.suffix.lower() == ".json" and path.is_file():
            return DirectoryDataset(path.parent), [path.name]
        if path.is_file():
            return ZipDataset(path.open("rb"), archive_limits(), label=path.name), None
    except UnsafeArchive as exc:
        raise refused_archive(exc) from None
    raise ValidationFailed(f"{path} is not a folder, a .zip or a .json file.", field="path")


def image_folder_open(path: Path) -> ImageFolder:
    """The command line's --images DIR: a folder of its own, searched by file name (same rules as a dataset)."""
    try:
        folder = DirectoryDataset(path)
    except UnsafeArchive as exc:
        raise refused_archive(exc) from None
    return ImageFolder(folder, prefix=f"{path.resolve().as_posix().rstrip('/')}/")


def archive_image_folder(files: DatasetFiles, under: str) -> ImageFolder:
    """The API's `images`: a folder inside the uploaded archive ("." for all of it), searched by file name."""
    folder = "" if under.strip() in ("", ".", "/") else under.strip().strip("/")
    if folder and not any(name.startswith(f"{folder}/") for name in files.names()):
        raise ValidationFailed(f"images: the archive has no folder {folder!r}.", field="images")
    return ImageFolder(files, under=folder)


def import_options(
    *,
    import_format: str,
    case: Case | None,
    smear: str,
    as_: str,
    label_map: Mapping[str, Any] | None,
    ids: frozenset[str] | None,
    field_types: Mapping[str, list[str]] | None,
    source_name: str,
    dry_run: bool = False,
    coco_json: list[str] | None = None,
    images: ImageFolder | None = None,
    split_from_dataset: bool = False,
    patient_per_image: bool = False,
    patients: Mapping[str, str] | None = None,
    patient_prefix: str = "",
    provenance: Mapping[str, str] | None = None,
) -> ImportOptions:
    if import_format not in ImportFormat.values:
        names = ", ".join(ImportFormat.values)
        raise ValidationFailed(f"format must be one of {names}, not {import_format!r}.", field="format")
    if patient_per_image and patients is not None:
        raise ValidationFailed("Give either one patient per image or a patients file, not both.", field="patients")
    if case is None and not patient_per_image and patients is None:
        raise ValidationFailed("Name the case the fields go into.", field="case")
    return ImportOptions(
        format=import_format,
        case=case,
        smear_code=smear_code_checked(smear),
        annotator=import_annotator(as_),
        label_map=label_map_checked(label_map) if label_map is not None else None,
        ids=ids,
        field_types=field_types,
        source_name=source_name,
        dry_run=dry_run,
        coco_json=coco_json,
        images=images,
        split_from_dataset=split_from_dataset,
        patient_per_image=patient_per_image,
        patients=patients,
        patient_prefix=patient_prefix,
        provenance=dict(provenance or {}),
    )


def case_by_code(code: str) -> Case:
    case = Case.objects.filter(code=code).first()
    if case is None:
        raise ValidationFailed(f"No case with the code {code!r}; create it first.", field="case")
    return case


def import_job_create(
    *, archive: Any, parameters: dict[str, Any], import_format: str, case_code: str, user: Any
) -> ImportJob:
    """Check an uploaded import at once (options, label map, archive entries) and queue it."""
    case = case_by_code(case_code)
    import_options(import_format=import_format, case=case, **_option_values(parameters, case))
    if archive.size > settings.AICELL_IMPORT_MAX_ARCHIVE_BYTES:
        raise PayloadTooLarge(
            f"The archive is {archive.size:,} bytes; the limit is {settings.AICELL_IMPORT_MAX_ARCHIVE_BYTES:,}.",
            field="archive",
        )
    files = _zip_files(archive, archive.name or "archive")
    try:
        if parameters.get("images") is not None:
            archive_image_folder(files, parameters["images"])
    finally:
        files.close()
    archive.seek(0)
    job = ImportJob(
        format=import_format, case=case, parameters=parameters, created_by=user, message="waiting for a worker"
    )
    job.archive.save("archive.zip", archive, save=False)
    try:
        with transaction.atomic():
            job.save()
            transaction.on_commit(lambda: _enqueue(ImportJob, job.pk))
    except BaseException:
        job.archive.delete(save=False)
        raise
    job.refresh_from_db()
    return job


def _option_values(parameters: Mapping[str, Any], case: Case) -> dict[str, Any]:
    """The import options of an API job (`case` is the job's: with per-image patients or a patients file, it only
    gives the per-image patients' prefix)."""
    ids = parameters.get("ids")
    patient_per_image = bool(parameters.get("patient_per_image"))
    patients = parameters.get("patients")
    return {
        "split_from_dataset": bool(parameters.get("split_from_dataset")),
        "patient_per_image": patient_per_image,
        "patients": patients,
        "patient_prefix": case.code,
        "provenance": {"license": parameters.get("license") or "", "source_url": parameters.get("source_url") or ""},
        "smear": parameters.get("smear") or "S1",
        "as_": parameters.get("as") or "consensus",
        "label_map": parameters.get("label_map"),
        "ids": frozenset(ids) if ids is not None else None,
        "field_types": parameters.get("field_types"),
        "source_name": parameters.get("source_name") or "",
    }


def _zip_files(handle: IO[bytes], label: str) -> ZipDataset:
    try:
        return ZipDataset(handle, archive_limits(), label=label)
    except UnsafeArchive as exc:
        raise refused_archive(exc) from None


def import_job_run(job: ImportJob) -> dict[str, Any]:
    """Import the job's archive; the archive is deleted afterwards whatever the outcome. Every problem of a refused
    dataset, or every note of an imported one, is kept as the job's CSV report."""
    try:
        with job.archive.open("rb") as handle:
            files = _zip_files(handle, job.parameters.get("archive_name") or "archive")
            under = job.parameters.get("images")
            images = archive_image_folder(files, under) if under is not None else None
            placed = bool(job.parameters.get("patient_per_image")) or job.parameters.get("patients") is not None
            options = import_options(
                import_format=job.format,
                case=None if placed else job.case,
                images=images,
                **_option_values(job.parameters, job.case),
            )

            def progress(percent: float, message: str) -> None:
                job_report_progress(job, percent, message)

            try:
                report = dataset_import(files, options, actor=job.created_by, progress=progress)
            except DatasetRefused as exc:
                _save_report(job, exc.report_rows)
                raise
            _save_report(job, report.notes())
            return report.to_dict()
    finally:
        job.archive.delete(save=False)
        ImportJob.objects.filter(pk=job.pk).update(archive="")


def _save_report(job: ImportJob, rows: list[tuple[str, Problem]]) -> None:
    if rows:
        job.report.save("report.csv", ContentFile(report_csv(rows).encode()), save=False)
        ImportJob.objects.filter(pk=job.pk).update(report=job.report.name)
