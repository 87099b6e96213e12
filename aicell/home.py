"""What needs each role now: the one read behind every role's home page (`GET /api/v1/home`).

A selector over the apps (aicell may read any app): each role's block holds only counts and short lists, so the
home page loads in one request.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db.models import Count, Exists, OuterRef, Q, Sum

from aicell.models import Job, JobStatus
from aicell.roles import Role, roles_of
from annotations.models import (
    AnnotationKind,
    AnnotationSet,
    AnnotationStatus,
    Assignment,
    Case,
    Conflict,
    ConflictStatus,
    ExportJob,
    Field,
    FieldStatus,
)
from inference.selectors import queued_cells

RECENT_JOBS = 5


def _job_models() -> list[type[Job]]:
    return [model for model in apps.get_models() if issubclass(model, Job)]


def _jobs(status: str) -> dict[str, Any]:
    by_kind: dict[str, int] = {}
    recent: list[dict[str, Any]] = []
    for model in _job_models():
        rows = model._default_manager.filter(status=status)
        count = rows.count()
        kind = str(model._meta.verbose_name)
        if count:
            by_kind[kind] = count
            for job in rows.order_by("-created_at")[:RECENT_JOBS]:
                recent.append(
                    {
                        "kind": kind,
                        "id": job.pk,
                        "progress": job.progress,
                        "message": job.message or job.error[:200],
                        "created_at": job.created_at.isoformat(),
                    }
                )
    recent.sort(key=lambda job: job["created_at"], reverse=True)
    return {"count": sum(by_kind.values()), "by_kind": by_kind, "recent": recent[:RECENT_JOBS]}


def _field_counts() -> dict[str, int]:
    counts = {status.value: 0 for status in FieldStatus}
    for status, n in Field.objects.order_by().values("status").annotate(n=Count("pk")).values_list("status", "n"):
        counts[status] = n
    return counts


def _admin_block() -> dict[str, Any]:
    has_assignment = Assignment.objects.filter(field=OuterRef("pk"))
    waiting = Field.objects.filter(status__in=[FieldStatus.UPLOADED, FieldStatus.PRELABELLED]).exclude(
        Exists(has_assignment)
    )
    return {
        "fields_waiting_for_assignment": waiting.count(),
        "fields_by_status": _field_counts(),
        "running_jobs": _jobs(JobStatus.RUNNING),
        "queued_jobs": sum(model._default_manager.filter(status=JobStatus.QUEUED).count() for model in _job_models()),
        "failed_jobs": _jobs(JobStatus.FAILED),
        "storage": {
            "fields": Field.objects.count(),
            "image_bytes": int(Field.objects.aggregate(total=Sum("byte_size"))["total"] or 0),
        },
    }


def _adjudicator_block() -> dict[str, Any]:
    escalated = Conflict.objects.filter(status=ConflictStatus.ESCALATED)
    return {
        "escalated_conflicts": escalated.count(),
        "fields_with_escalated_conflicts": escalated.values("field").distinct().count(),
        "fields_in_adjudication": Field.objects.filter(status=FieldStatus.IN_ADJUDICATION).count(),
        "fields_in_crosscheck": Field.objects.filter(status=FieldStatus.IN_CROSSCHECK).count(),
    }


def _annotator_block(user: Any) -> dict[str, Any]:
    submitted = AnnotationSet.objects.filter(
        field=OuterRef("field"),
        annotator=user,
        kind=AnnotationKind.ANNOTATOR,
        status__in=[AnnotationStatus.SUBMITTED, AnnotationStatus.LOCKED],
    )
    mine = Assignment.objects.filter(annotator=user)
    waiting_for_me = Conflict.objects.filter(status=ConflictStatus.OPEN).filter(
        Q(field__review__set_a__annotator=user, decision_a="") | Q(field__review__set_b__annotator=user, decision_b="")
    )
    return {
        "assigned_fields": mine.count(),
        "fields_to_annotate": mine.exclude(Exists(submitted)).count(),
        "conflicts_waiting": waiting_for_me.count(),
        "fields_with_conflicts_waiting": waiting_for_me.values("field").distinct().count(),
        "review_queue": queued_cells(user).count(),
    }


def _researcher_block(user: Any) -> dict[str, Any]:
    exports = ExportJob.objects.filter(created_by=user)
    return {
        "cases": Case.objects.count(),
        "cases_with_truth": Case.objects.filter(smears__fields__status=FieldStatus.CONSENSUS).distinct().count(),
        "exports": exports.count(),
        "exports_running": exports.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).count(),
        "exports_ready": exports.filter(status=JobStatus.SUCCEEDED).count(),
    }


def home_summary(user: Any) -> dict[str, Any]:
    """One block per role the user holds (absent otherwise)."""
    roles = roles_of(user)
    summary: dict[str, Any] = {"roles": sorted(role.value for role in roles)}
    if Role.ADMIN in roles:
        summary["admin"] = _admin_block()
    if Role.ADJUDICATOR in roles:
        summary["adjudicator"] = _adjudicator_block()
    if Role.ANNOTATOR in roles:
        summary["annotator"] = _annotator_block(user)
    if Role.RESEARCHER in roles:
        summary["researcher"] = _researcher_block(user)
    return summary
