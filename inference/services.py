"""Pre-labelling: run the registry's active pipeline over fields and store each field's prediction set.

A prediction set is identified by (field, classifier version): running again replaces it in one transaction, so
a redelivered or repeated task never duplicates cells. A field that disappears meanwhile is skipped; a field
whose image cannot be read fails alone, with its error recorded on the job item.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet

from aicell.errors import DomainError, ValidationFailed
from aicell.jobs import job_fail, job_mark_running, job_succeed
from aicell.models import JobStatus
from annotations.field_states import field_transition
from annotations.images import open_rgb
from annotations.models import AnnotationKind, AnnotationSet, AnnotationStatus, Cell, Field, FieldStatus
from annotations.truth import truth_q
from inference.models import ItemStatus, PrelabelItem, PrelabelJob, PrelabelTrigger
from inference.runtime import pipeline_for
from training.core.stages import CLASSIFIER, DETECTOR, STAGES
from training.selectors import active_model_versions, missing_active_stages, model_versions_by_id

if TYPE_CHECKING:
    from inference.core.pipeline import FieldPrediction
    from training.models import ModelVersion

logger = logging.getLogger(__name__)


class ImageUnreadable(Exception):
    """The field's stored image is missing or cannot be decoded."""


def active_pipeline_versions() -> dict[str, ModelVersion]:
    """The active versions a pre-label job runs: at least a detector (alone it pre-labels unclassified boxes)."""
    versions = active_model_versions()
    if DETECTOR.name not in versions:
        missing = missing_active_stages(versions)
        raise ValidationFailed(
            f"No active model for: {', '.join(missing)}. Train and promote a detector first "
            "(alone it pre-labels unclassified boxes).",
            field="model_versions",
        )
    return versions


def pipeline_description(versions: dict[str, ModelVersion]) -> dict[str, int]:
    return {stage: versions[stage].pk for stage in STAGES if stage in versions}


def prediction_version(versions: dict[str, ModelVersion]) -> ModelVersion:
    """The version a prediction set belongs to: the classifier's, or the detector's for detector-only sets."""
    return versions.get(CLASSIFIER.name) or versions[DETECTOR.name]


# --- jobs --------------------------------------------------------------------------------------------------------


def prelabel_job_create(*, fields: QuerySet[Field], trigger: PrelabelTrigger, actor: Any = None) -> PrelabelJob:
    """Queue the pre-labelling of `fields` with the active pipeline; the tasks start after commit."""
    from inference import tasks

    versions = active_pipeline_versions()
    field_ids = list(fields.order_by("id").values_list("id", flat=True))
    if not field_ids:
        raise ValidationFailed("There are no fields to pre-label with these filters.", field="fields")
    with transaction.atomic():
        job = PrelabelJob.objects.create(
            trigger=trigger,
            pipeline=pipeline_description(versions),
            field_count=len(field_ids),
            created_by=actor if actor is not None and actor.is_authenticated else None,
            message=f"{len(field_ids)} fields queued",
        )
        PrelabelItem.objects.bulk_create(
            PrelabelItem(job=job, field_id=field_id, field_id_at_start=field_id) for field_id in field_ids
        )
        transaction.on_commit(lambda: tasks.enqueue_prelabel_job(job.pk, field_ids))
    job.refresh_from_db()  # failed already when the task queue was unreachable
    return job


def fields_to_prelabel(*, case_codes: Sequence[str] = (), everything: bool = False) -> QuerySet[Field]:
    """Fields without truth; unless `everything`, only those the active classifier has not pre-labelled yet."""
    fields = Field.objects.exclude(truth_q(with_reopened=True, through="annotation_sets__"))
    if case_codes:
        fields = fields.filter(smear__case__code__in=case_codes)
    if not everything:
        active = active_model_versions()
        if DETECTOR.name in active:
            fields = fields.exclude(
                annotation_sets__kind=AnnotationKind.PREDICTION,
                annotation_sets__model_version=prediction_version(active),
            )
    return fields.distinct()


def _finish_job_if_done(job_id: int) -> None:
    with transaction.atomic():
        job = PrelabelJob.objects.select_for_update().get(pk=job_id)
        handled = job.done_count + job.failed_count
        PrelabelJob.objects.filter(pk=job_id).update(progress=100.0 * handled / max(job.field_count, 1))
        if handled < job.field_count or job.is_finished:
            return
        if job.failed_count == job.field_count:
            job_fail(job, f"all {job.field_count} fields failed; see the items for each error")
        else:
            message = f"{job.done_count} fields pre-labelled" + (
                f", {job.failed_count} failed" if job.failed_count else ""
            )
            job_succeed(job, result={"done": job.done_count, "failed": job.failed_count}, message=message)


def _settle_item(item: PrelabelItem, status: ItemStatus, *, error: str = "", cell_count: int = 0) -> None:
    settled = PrelabelItem.objects.filter(pk=item.pk, status=ItemStatus.QUEUED).update(
        status=status, error=error, cell_count=cell_count
    )
    if not settled:
        return  # a redelivered task already settled this item: count it once
    counter = "failed_count" if status == ItemStatus.FAILED else "done_count"
    PrelabelJob.objects.filter(pk=item.job_id).update(**{counter: F(counter) + 1})
    _finish_job_if_done(item.job_id)


# --- running -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldOutcome:
    field_id: int
    status: ItemStatus
    cell_count: int = 0
    error: str = ""


def _read_field_image(field: Field) -> np.ndarray:
    try:
        with field.image.open("rb") as handle:
            return np.array(open_rgb(handle.read()))
    except FileNotFoundError:
        raise ImageUnreadable(f"the image file of field {field.pk} is missing from storage") from None
    except Exception as exc:
        raise ImageUnreadable(f"the image of field {field.pk} cannot be decoded: {exc}") from None


def prelabel_fields_run(*, field_ids: Sequence[int], job_id: int) -> list[FieldOutcome]:
    """Pre-label some of a job's fields with the job's pipeline in one batched pipeline run."""
    job = job_mark_running(PrelabelJob, job_id)
    if job is None:
        return []  # the job was cancelled or has finished: nothing left to do
    versions = model_versions_by_id(job.pipeline)
    items = _open_items(job_id, field_ids)
    # A redelivered chunk redoes only the fields whose items are still open.
    field_ids = [field_id for field_id in field_ids if field_id in items]
    fields = {field.pk: field for field in Field.objects.filter(pk__in=field_ids)}
    outcomes: list[FieldOutcome] = []
    images: list[np.ndarray] = []
    readable: list[Field] = []
    for field_id in field_ids:
        field = fields.get(field_id)
        if field is None:
            outcomes.append(FieldOutcome(field_id, ItemStatus.SKIPPED, error="the field was deleted"))
            continue
        try:
            images.append(_read_field_image(field))
            readable.append(field)
        except ImageUnreadable as exc:
            outcomes.append(FieldOutcome(field_id, ItemStatus.FAILED, error=str(exc)))
    if readable:
        predictions = pipeline_for(versions).run(images)
        for field, prediction in zip(readable, predictions, strict=True):
            stored = prediction_set_replace(field_id=field.pk, versions=versions, prediction=prediction)
            if stored is None:
                outcomes.append(FieldOutcome(field.pk, ItemStatus.SKIPPED, error="the field was deleted"))
            else:
                outcomes.append(FieldOutcome(field.pk, ItemStatus.SUCCEEDED, cell_count=stored))
    for outcome in outcomes:
        if outcome.status == ItemStatus.FAILED:
            logger.warning("pre-label of field %s failed: %s", outcome.field_id, outcome.error)
        _settle_item(items[outcome.field_id], outcome.status, error=outcome.error, cell_count=outcome.cell_count)
    return outcomes


def _open_items(job_id: int, field_ids: Iterable[int]) -> dict[int, PrelabelItem]:
    items = PrelabelItem.objects.filter(job_id=job_id, field_id_at_start__in=list(field_ids), status=ItemStatus.QUEUED)
    PrelabelItem.objects.filter(pk__in=[item.pk for item in items]).update(attempts=F("attempts") + 1)
    return {item.field_id_at_start: item for item in items}


def prediction_set_replace(
    *, field_id: int, versions: dict[str, ModelVersion], prediction: FieldPrediction
) -> int | None:
    """Store a field's predictions as the prediction set of (field, classifier version), replacing an earlier run
    of the same version in the same transaction. Returns the number of cells, or None when the field is gone."""
    classifier = prediction_version(versions)
    with transaction.atomic():
        # The field row lock serialises two deliveries of the same task for this field.
        field = Field.objects.select_for_update().filter(pk=field_id).first()
        if field is None:
            return None
        AnnotationSet.objects.filter(field=field, kind=AnnotationKind.PREDICTION, model_version=classifier).delete()
        prediction_set = AnnotationSet.objects.create(
            field=field,
            kind=AnnotationKind.PREDICTION,
            model_version=classifier,
            pipeline=pipeline_description(versions),
            status=AnnotationStatus.LOCKED,
        )
        Cell.objects.bulk_create(_prediction_cell(prediction_set, cell) for cell in prediction.cells)
        if field.status == FieldStatus.UPLOADED:
            field_transition(field, FieldStatus.PRELABELLED)
    return len(prediction.cells)


def _prediction_cell(prediction_set: AnnotationSet, cell: Any) -> Cell:
    x, y, w, h = cell.box
    probabilities = list(cell.probabilities)
    uncertainty = dict(cell.uncertainty)
    return Cell(
        annotation_set=prediction_set,
        x=x,
        y=y,
        width=w,
        height=h,
        # A detector-only box is not judged: countable until an annotator says otherwise, no class.
        countable=cell.p_countable is None or cell.p_countable >= 0.5,
        cell_class_id=cell.predicted_class,
        scores={
            "probabilities": probabilities,
            "member_probabilities": [list(member) for member in cell.member_probabilities],
            "p_countable": cell.p_countable,
            "uncertainty": dict(cell.uncertainty),
        },
        detector_score=cell.detector_score,
        confidence=max(probabilities) if probabilities else None,
        margin=uncertainty.get("margin"),
        entropy=uncertainty.get("entropy"),
        mutual_information=uncertainty.get("mutual_information"),
    )


def prelabel_job_fail(job_id: int, error: str) -> None:
    """A job whose tasks cannot run at all (e.g. the pipeline cannot be loaded) fails with the reason."""
    job = PrelabelJob.objects.filter(pk=job_id).exclude(status__in=[JobStatus.SUCCEEDED, JobStatus.CANCELLED]).first()
    if job is not None and not job.is_finished:
        PrelabelItem.objects.filter(job=job, status=ItemStatus.QUEUED).update(status=ItemStatus.FAILED, error=error)
        job_fail(job, error)


def prelabel_new_uploads(field_ids: list[int]) -> PrelabelJob | None:
    """Pre-label a freshly uploaded batch when automatic pre-labelling is on and every stage has an active model."""
    if not settings.AICELL_AUTO_PRELABEL or missing_active_stages(active_model_versions()):
        return None
    return prelabel_job_create(fields=Field.objects.filter(pk__in=field_ids), trigger=PrelabelTrigger.UPLOAD)


def prelabel_after_promotion(version_ids: list[int]) -> PrelabelJob | None:
    """Subscribed to `training.events.MODEL_PROMOTED_HOOKS`: once a promotion committed, pre-label every field
    without truth again with the new pipeline, when all three stages have an active version of one profile.
    Never fails the promotion: a job that cannot be made is logged and skipped."""
    versions = active_model_versions()
    if missing_active_stages(versions):
        return None
    profiles = {version.profile for version in versions.values()}
    if len(profiles) != 1:
        logger.warning("not pre-labelling after promotion: the active versions mix profiles %s", profiles)
        return None
    fields = fields_to_prelabel(everything=True)
    if not fields.exists():
        return None
    try:
        return prelabel_job_create(fields=fields, trigger=PrelabelTrigger.PROMOTION)
    except DomainError as exc:
        logger.warning("not pre-labelling after promotion of %s: %s", version_ids, exc.message)
        return None
