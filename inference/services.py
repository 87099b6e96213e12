"""Pre-labelling: run the registry's active pipeline over fields and store each field's prediction set.

A prediction set is identified by (field, classifier version): running again replaces it in one transaction, so
a redelivered or repeated task never duplicates cells. A field that disappears meanwhile is skipped; a field
whose image cannot be read fails alone, with its error recorded on the job item.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from aicell.bulk import encode_rows, insert_row_groups, insert_rows, update_rows
from aicell.errors import DomainError, NotFound, StateConflict, ValidationFailed
from aicell.jobs import job_fail, job_mark_running, job_succeed
from aicell.models import JobStatus
from annotations.field_states import fields_transition_from
from annotations.images import decode_rgb
from annotations.models import (
    AnnotationKind,
    AnnotationSet,
    AnnotationStatus,
    Cell,
    CellReview,
    Field,
    FieldStatus,
    uniform_draw,
)
from annotations.review.cells import cell_decision_create, cell_decision_withdraw
from annotations.truth import truth, truth_q
from inference import selectors
from inference.models import ItemStatus, PrelabelItem, PrelabelJob, PrelabelTrigger, ReviewClaim
from inference.runtime import pipeline_for, profile_named
from training.core.stages import CLASSIFIER, DETECTOR, STAGES
from training.selectors import active_model_versions, missing_active_stages, model_versions_by_id

if TYPE_CHECKING:
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


def prelabel_chunk(versions: dict[str, ModelVersion]) -> int:
    """Fields per pre-label task: AICELL_PRELABEL_CHUNK when set, else the profile's `prelabel_chunk`."""
    if settings.AICELL_PRELABEL_CHUNK > 0:
        return int(settings.AICELL_PRELABEL_CHUNK)
    try:
        return profile_named(prediction_version(versions).profile).prelabel_chunk
    except KeyError:  # an unknown profile: the task fails the job with the reason
        return 32


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
        chunk = prelabel_chunk(versions)
        transaction.on_commit(lambda: tasks.enqueue_prelabel_job(job.pk, field_ids, chunk))
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


# --- running -----------------------------------------------------------------------------------------------------


@dataclass
class PrelabelTimings:
    """Where a chunk's time went (seconds) and how many SQL queries it made; the task returns it, so benchmarks
    (benchmarks/prelabel_path.py) read the worker's own figures from the result backend."""

    fields: int = 0
    read_s: float = 0.0
    decode_s: float = 0.0
    model_s: float = 0.0
    write_s: float = 0.0
    settle_s: float = 0.0
    total_s: float = 0.0
    queries: int = 0

    def as_dict(self) -> dict[str, float]:
        return {key: round(value, 6) for key, value in dataclasses.asdict(self).items()}


class _QueryCounter:
    def __init__(self, timings: PrelabelTimings) -> None:
        self.timings = timings

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.timings.queries += 1
        return execute(sql, params, many, context)


@dataclass(frozen=True)
class PreparedCells:
    """A field's predicted cells as Cell rows (`_prediction_row`), encoded while the next pass decodes."""

    count: int
    rows: str


@dataclass(frozen=True)
class FieldOutcome:
    field_id: int
    status: ItemStatus
    cell_count: int = 0
    error: str = ""


def _read_field_bytes(field: Field) -> bytes:
    try:
        with field.image.open("rb") as handle:
            data: bytes = handle.read()
            return data
    except FileNotFoundError:
        raise ImageUnreadable(f"the image file of field {field.pk} is missing from storage") from None
    except Exception as exc:
        raise ImageUnreadable(f"the image of field {field.pk} cannot be decoded: {exc}") from None


def _decode_field_image(field_id: int, data: bytes) -> np.ndarray:
    try:
        return decode_rgb(data)
    except Exception as exc:
        raise ImageUnreadable(f"the image of field {field_id} cannot be decoded: {exc}") from None


def prelabel_fields_run(
    *, field_ids: Sequence[int], job_id: int, timings: PrelabelTimings | None = None
) -> list[FieldOutcome]:
    """Pre-label some of a job's fields with the job's pipeline in one batched pipeline run."""
    timings = timings if timings is not None else PrelabelTimings()
    started = time.perf_counter()
    with connection.execute_wrapper(_QueryCounter(timings)):
        outcomes = _prelabel_fields_run(field_ids, job_id, timings)
    timings.total_s += time.perf_counter() - started
    return outcomes


def _load_field_image(field: Field) -> tuple[np.ndarray, float, float]:
    """(RGB pixels, read seconds, decode seconds); runs in the decode threads (no database access)."""
    began = time.perf_counter()
    data = _read_field_bytes(field)
    decoding = time.perf_counter()
    image = _decode_field_image(field.pk, data)
    return image, decoding - began, time.perf_counter() - decoding


def _pass_size(pipeline: Any) -> int:
    """Fields per pipeline run inside a chunk: enough crops for the classifiers' batches, and the decode threads
    prepare the next pass while this one runs."""
    return max(int(pipeline.profile.detector.batch_size), 16)


def _predict(
    pipeline: Any, fields: Sequence[Field], failed: dict[int, str], timings: PrelabelTimings
) -> dict[int, PreparedCells]:
    """The cell rows (`_prediction_row`) of the fields whose images decode. Decoding runs in a thread pool two
    passes ahead of the model (the decoders release the GIL), so reading and decoding overlap the forward passes
    and the preparing of each pass's rows. A field whose image cannot be read fails alone."""
    rows: dict[int, PreparedCells] = {}
    size = _pass_size(pipeline)
    passes = [list(fields[start : start + size]) for start in range(0, len(fields), size)]
    with ThreadPoolExecutor(max_workers=settings.AICELL_DECODE_THREADS, thread_name_prefix="decode") as pool:
        loading = [[pool.submit(_load_field_image, field) for field in batch] for batch in passes[:2]]
        for index, batch in enumerate(passes):
            if index + 2 < len(passes):
                loading.append([pool.submit(_load_field_image, field) for field in passes[index + 2]])
            ready, images = [], []
            for field, future in zip(batch, loading[index], strict=True):
                try:
                    image, read_s, decode_s = future.result()
                except ImageUnreadable as exc:
                    failed[field.pk] = str(exc)
                    continue
                timings.read_s += read_s
                timings.decode_s += decode_s
                ready.append(field.pk)
                images.append(image)
            loading[index] = []  # let the decoded pixels go once the pass has them
            if images:
                began = time.perf_counter()
                predictions = pipeline.run(images)
                preparing = time.perf_counter()
                timings.model_s += preparing - began
                for field_id, prediction in zip(ready, predictions, strict=True):
                    rows[field_id] = PreparedCells(
                        len(prediction.cells), encode_rows([_prediction_row(cell) for cell in prediction.cells])
                    )
                timings.write_s += time.perf_counter() - preparing
    return rows


def _prelabel_fields_run(field_ids: Sequence[int], job_id: int, timings: PrelabelTimings) -> list[FieldOutcome]:
    job = job_mark_running(PrelabelJob, job_id)
    if job is None:
        return []  # the job was cancelled or has finished: nothing left to do
    versions = model_versions_by_id(job.pipeline)
    items = _open_items(job_id, field_ids)
    # A redelivered chunk redoes only the fields whose items are still open.
    field_ids = [field_id for field_id in field_ids if field_id in items]
    timings.fields += len(field_ids)
    fields = {field.pk: field for field in Field.objects.filter(pk__in=field_ids)}
    failed: dict[int, str] = {}
    predictions: dict[int, PreparedCells] = {}
    present = [fields[field_id] for field_id in field_ids if field_id in fields]
    if present:
        predictions = _predict(pipeline_for(versions), present, failed, timings)
    return _store_and_settle(job_id, field_ids, items, versions, predictions, failed, timings)


def _store_and_settle(
    job_id: int,
    field_ids: Sequence[int],
    items: dict[int, PrelabelItem],
    versions: dict[str, ModelVersion],
    predictions: dict[int, PreparedCells],
    failed: dict[int, str],
    timings: PrelabelTimings,
) -> list[FieldOutcome]:
    """One transaction for the chunk, in a number of queries that does not grow with it: the items still open
    and the fields still there are locked, their prediction sets replaced and their cells inserted in one
    statement each (aicell.bulk), the items settled in one and the job's counters moved once. A worker killed
    before the commit leaves it all undone."""
    writing = time.perf_counter()
    classifier = prediction_version(versions)
    with transaction.atomic():
        open_items = {
            item.field_id_at_start: item
            for item in PrelabelItem.objects.select_for_update().filter(
                pk__in=[item.pk for item in items.values()], status=ItemStatus.QUEUED
            )
        }
        # A redelivered task that settled these items meanwhile did the work: count it once.
        wanted = [field_id for field_id in field_ids if field_id in open_items and field_id in predictions]
        # The field row locks serialise two deliveries of the same chunk (ordered: no deadlock between chunks).
        present = set(
            Field.objects.select_for_update().filter(pk__in=wanted).order_by("pk").values_list("pk", flat=True)
        )
        stored = [field_id for field_id in wanted if field_id in present]
        stored_set = set(stored)
        AnnotationSet.objects.filter(
            field_id__in=stored, kind=AnnotationKind.PREDICTION, model_version=classifier
        ).delete()
        description = pipeline_description(versions)
        set_rows = [
            {
                "field_id": field_id,
                "kind": AnnotationKind.PREDICTION.value,
                "model_version_id": classifier.pk,
                "pipeline": description,
                "status": AnnotationStatus.LOCKED.value,
            }
            for field_id in stored
        ]
        sets = dict(insert_rows(AnnotationSet, set_rows, returning=("field_id", "id")))
        insert_row_groups(
            Cell,
            [
                # The cells are open to review decisions of the version that predicted them (`Cell.review_version`).
                ({"annotation_set_id": sets[field_id], "review_version_id": classifier.pk}, predictions[field_id].rows)
                for field_id in stored
            ],
            CELL_COLUMNS,
        )
        fields_transition_from(stored, FieldStatus.UPLOADED, FieldStatus.PRELABELLED)
        settling = time.perf_counter()
        timings.write_s += settling - writing
        outcomes = [
            _outcome(field_id, stored_set, predictions, failed) for field_id in field_ids if field_id in open_items
        ]
        update_rows(
            PrelabelItem,
            [
                {
                    "pk": open_items[o.field_id].pk,
                    "status": o.status.value,
                    "error": o.error,
                    "cell_count": o.cell_count,
                }
                for o in outcomes
            ],
            ["status", "error", "cell_count"],
        )
        failures = sum(outcome.status == ItemStatus.FAILED for outcome in outcomes)
        if outcomes:
            PrelabelJob.objects.filter(pk=job_id).update(
                done_count=F("done_count") + len(outcomes) - failures, failed_count=F("failed_count") + failures
            )
            _finish_job_if_done(job_id)
    for outcome in outcomes:
        if outcome.status == ItemStatus.FAILED:
            logger.warning("pre-label of field %s failed: %s", outcome.field_id, outcome.error)
    timings.settle_s += time.perf_counter() - settling
    return outcomes


def _outcome(
    field_id: int, stored: set[int], predictions: dict[int, PreparedCells], failed: dict[int, str]
) -> FieldOutcome:
    if field_id in failed:
        return FieldOutcome(field_id, ItemStatus.FAILED, error=failed[field_id])
    if field_id in stored:
        return FieldOutcome(field_id, ItemStatus.SUCCEEDED, cell_count=predictions[field_id].count)
    return FieldOutcome(field_id, ItemStatus.SKIPPED, error="the field was deleted")


def _open_items(job_id: int, field_ids: Iterable[int]) -> dict[int, PrelabelItem]:
    items = PrelabelItem.objects.filter(job_id=job_id, field_id_at_start__in=list(field_ids), status=ItemStatus.QUEUED)
    PrelabelItem.objects.filter(pk__in=[item.pk for item in items]).update(attempts=F("attempts") + 1)
    return {item.field_id_at_start: item for item in items}


CELL_COLUMNS = (
    "x",
    "y",
    "width",
    "height",
    "countable",
    "cell_class_id",
    "scores",
    "detector_score",
    "confidence",
    "margin",
    "entropy",
    "mutual_information",
    "countability_margin",
    "review_random",
)


def _prediction_row(cell: Any) -> dict[str, Any]:
    """A predicted cell as a Cell row (aicell.bulk.insert_rows), all but its annotation set."""
    x, y, w, h = (float(v) for v in cell.box)
    probabilities = [float(p) for p in cell.probabilities]
    uncertainty = {key: float(value) for key, value in cell.uncertainty.items()}
    p_countable = None if cell.p_countable is None else float(cell.p_countable)
    return {
        "x": x,
        "y": y,
        "width": w,
        "height": h,
        # A detector-only box is not judged: countable until an annotator says otherwise, no class.
        "countable": p_countable is None or p_countable >= 0.5,
        "cell_class_id": None if cell.predicted_class is None else int(cell.predicted_class),
        "scores": {
            "probabilities": probabilities,
            "member_probabilities": [[float(p) for p in member] for member in cell.member_probabilities],
            "p_countable": p_countable,
            "uncertainty": uncertainty,
        },
        "detector_score": None if cell.detector_score is None else float(cell.detector_score),
        "confidence": max(probabilities) if probabilities else None,
        "margin": uncertainty.get("margin"),
        "entropy": uncertainty.get("entropy"),
        "mutual_information": uncertainty.get("mutual_information"),
        "countability_margin": abs(2 * p_countable - 1) if p_countable is not None else None,
        "review_random": uniform_draw(),  # the "random" strategy's fixed draw (a model default, per row here)
    }


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


# --- the review queue: claims and blind decisions ----------------------------------------------------------------
#
# A reviewer holds a small batch of queued cells (claims), renewed while their page is open (`review_claims_renew`)
# and released at once when they leave or skip (`review_claims_release`) or decide. A claim reserves one of the two
# seats of a cell only; the other reviewer can hold the same cell at the same time, and nobody else is locked out of
# the queue for longer than a page stays open.


@dataclass(frozen=True)
class ReviewBatch:
    cells: list[Cell]
    expires_at: Any


def _claim_expiry() -> Any:
    return timezone.now() + timedelta(seconds=settings.AICELL_REVIEW_CLAIM_SECONDS)


def _seats_taken(user: Any, picked: list[Cell], now: Any) -> list[Cell]:
    """The picked cells whose seat is still free once locked: two reviewers picking the same last seat at the same
    moment queue on the cell's row lock, and the second, reading again after the first committed its claim, sees
    the cell full (PostgreSQL; SQLite runs one writing transaction at a time anyway)."""
    ids = [cell.pk for cell in picked]
    if not ids:
        return []
    list(Cell.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk", flat=True))
    free = set(selectors.queued_cells(user, now=now, among=ids).values_list("pk", flat=True))
    return [cell for cell in picked if cell.pk in free]


def review_claims_take(user: Any, request: selectors.ReviewQueueRequest) -> ReviewBatch:
    """The reviewer's batch: the cells they still hold (renewed), topped up to `request.limit` with the next
    cells of the queue, claimed for them. A constant number of queries whatever the queue's size."""
    now = timezone.now()
    expires_at = _claim_expiry()
    with transaction.atomic():
        ReviewClaim.objects.filter(expires_at__lte=now).delete()
        held = list(selectors.held_cells(user, now=now)[: request.limit])
        # Claims on cells the reviewer can no longer decide (the others decided them meanwhile) go at once.
        ReviewClaim.objects.filter(reviewer=user).exclude(cell_id__in=[cell.pk for cell in held]).delete()
        fresh = _seats_taken(
            user,
            selectors.review_pick(
                user,
                dataclasses.replace(request, limit=request.limit - len(held)),
                exclude_ids=[cell.pk for cell in held],
            ),
            now,
        )
        ReviewClaim.objects.filter(reviewer=user).update(expires_at=expires_at)
        ReviewClaim.objects.bulk_create(
            [ReviewClaim(cell_id=cell.pk, reviewer=user, expires_at=expires_at) for cell in fresh],
            ignore_conflicts=True,
        )
    return ReviewBatch(cells=held + fresh, expires_at=expires_at)


def review_claims_renew(user: Any) -> tuple[int, Any]:
    """Keep the reviewer's batch while their page is open; (cells held, new expiry)."""
    expires_at = _claim_expiry()
    held = ReviewClaim.objects.filter(reviewer=user, expires_at__gt=timezone.now()).update(expires_at=expires_at)
    return held, expires_at


def review_claims_release(user: Any, cell_ids: Sequence[int] | None = None) -> int:
    """Give cells back to the queue at once (skipped ones, or the whole batch when the reviewer leaves)."""
    claims = ReviewClaim.objects.filter(reviewer=user)
    if cell_ids is not None:
        claims = claims.filter(cell_id__in=list(cell_ids))
    released, _ = claims.delete()
    return released


def review_decision_create(*, user: Any, cell_id: Any, data: dict[str, Any]) -> CellReview:
    """The reviewer's blind decision on a queued cell they hold. 409 with the reason when they do not hold it, have
    decided it already, or its model version is no longer the active one; the decision itself is
    `annotations.review.cells.cell_decision_create`. The claim is released with the decision."""
    if isinstance(cell_id, bool) or not isinstance(cell_id, int):
        raise ValidationFailed("cell must be the id of a queued cell.", field="cell")
    cell = (
        Cell.objects.select_related("annotation_set")
        .filter(pk=cell_id, annotation_set__kind=AnnotationKind.PREDICTION)
        .first()
    )
    if cell is None:
        raise NotFound(f"Cell {cell_id} is not a queued cell.")
    if selectors.cell_decision_of(user, cell.pk) is not None:
        raise StateConflict(f"You decided cell {cell.pk} already.", details={"reason": "already_decided"})
    if cell.annotation_set.model_version_id != selectors.active_classifier_id():
        raise StateConflict(
            f"Cell {cell.pk} comes from a model version that is no longer active; reload the queue.",
            details={"reason": "model_version_not_active"},
        )
    if not ReviewClaim.objects.filter(cell=cell, reviewer=user, expires_at__gt=timezone.now()).exists():
        raise StateConflict(
            f"You do not hold cell {cell.pk} (your hold expired or was released); reload the queue.",
            details={"reason": "not_held"},
        )
    if truth(with_reopened=True).filter(field_id=cell.annotation_set.field_id).exists():
        raise StateConflict(
            f"Field {cell.annotation_set.field_id} holds reviewed truth now; its cells left the queue.",
            details={"reason": "field_has_truth"},
        )
    with transaction.atomic():
        review = cell_decision_create(cell=cell, data=data, actor=user)
        ReviewClaim.objects.filter(cell=cell, reviewer=user).delete()
    return review


def review_decision_withdraw(*, user: Any, cell_id: int) -> CellReview:
    """Undo: take one's decision back while the other reviewer has not decided; the cell is held again."""
    with transaction.atomic():
        review = cell_decision_withdraw(cell_id=cell_id, actor=user)
        if review.cell_id is not None:
            ReviewClaim.objects.update_or_create(
                cell_id=review.cell_id, reviewer=user, defaults={"expires_at": _claim_expiry()}
            )
    return review
