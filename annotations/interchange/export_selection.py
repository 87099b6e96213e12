"""What an export contains: the request (sources, cases, splits, classes), checked into a plan, and the queries that
stream its rows. Selection rules (README "Interchange"):

- consensus (the default) exports truth sets only (kind consensus or imported) and only once they are locked:
  annotator drafts, submitted single-annotator sets and unfinished consensus never enter it;
- annotations exports the annotators' submitted (or locked) sets, drafts never;
- predictions exports one model version's prediction sets as a COCO results file beside the ground truth (or, when
  it is the only source, as the annotations too);
- an image is exported when it has a set of the instance source; the split is the patient's (an export gives
  patients without one their split first, `interchange.jobs.export_plan_assigning_splits`), or the one split that
  `split_all` names for every image (then no split is assigned). Patients still without a split are exported under
  the split "unassigned" (ask for it by that name; a --split filter leaves them out).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from django.db.models import CharField, Exists, OuterRef, Q, QuerySet, Subquery, Value

from aicell.errors import FieldError, PermissionDenied, ValidationFailed
from aicell.roles import Role, roles_of
from annotations.interchange.coco_format import (
    UNCLASSIFIED_CATEGORY_ID,
    UNCOUNTABLE_CATEGORY_ID,
    category_class_id,
    category_id_of,
)
from annotations.models import (
    AnnotationKind,
    AnnotationSet,
    AnnotationStatus,
    Case,
    Cell,
    Field,
    ImportedDataset,
    Split,
)
from annotations.truth import cell_truth_outcome_of, truth_q

UNASSIGNED = "unassigned"
SPLIT_ORDER: tuple[str, ...] = (*Split.values, UNASSIGNED)


class ExportSource(StrEnum):
    CONSENSUS = "consensus"
    ANNOTATIONS = "annotations"
    PREDICTIONS = "predictions"


HUMAN_SOURCES = (ExportSource.CONSENSUS, ExportSource.ANNOTATIONS)
# Researchers get de-identified truth and model output; annotators' own work stays with the lab's admins.
SOURCES_BY_ROLE: Mapping[Role, frozenset[ExportSource]] = {
    Role.ADMIN: frozenset(ExportSource),
    Role.RESEARCHER: frozenset({ExportSource.CONSENSUS, ExportSource.PREDICTIONS}),
}


@dataclass(frozen=True)
class ExportRequest:
    sources: tuple[str, ...] = (ExportSource.CONSENSUS.value,)
    cases: tuple[str, ...] = ()
    splits: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    model_version: int | None = None
    split_all: str | None = None  # every image into this one split, whatever its patient's
    format: str = "coco"  # the writer (`interchange.formats.EXPORT_WRITERS`)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "sources": list(self.sources),
            "cases": list(self.cases),
            "splits": list(self.splits),
            "classes": list(self.classes),
            "model_version": self.model_version,
            "split_all": self.split_all,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExportRequest:
        return cls(
            sources=tuple(data.get("sources") or (ExportSource.CONSENSUS.value,)),
            cases=tuple(data.get("cases") or ()),
            splits=tuple(data.get("splits") or ()),
            classes=tuple(str(value) for value in data.get("classes") or ()),
            model_version=data.get("model_version"),
            split_all=data.get("split_all"),
            format=data.get("format") or "coco",
        )


@dataclass(frozen=True)
class ExportPlan:
    request: ExportRequest
    sources: frozenset[ExportSource]
    case_ids: tuple[int, ...] | None  # None: every case
    splits: tuple[str, ...]  # the splits asked for, in SPLIT_ORDER
    category_ids: frozenset[int] | None  # None: every category
    model_version_id: int | None  # the predictions' model version
    split_all: str | None = None
    left_out: dict[str, int] = field(default_factory=dict)
    splits_assigned: dict[str, str] = field(default_factory=dict)  # patient code -> split given for this export

    @property
    def instance_sources(self) -> frozenset[ExportSource]:
        """The sources of the instances files: the human ones asked for, else the predictions."""
        human = self.sources & set(HUMAN_SOURCES)
        return frozenset(human) if human else frozenset({ExportSource.PREDICTIONS})

    @property
    def with_results(self) -> bool:
        return ExportSource.PREDICTIONS in self.sources


def _set_q(source: ExportSource, model_version_id: int | None, prefix: str = "") -> Q:
    if source == ExportSource.CONSENSUS:
        return truth_q(through=prefix)
    if source == ExportSource.ANNOTATIONS:
        return Q(
            **{
                f"{prefix}kind": AnnotationKind.ANNOTATOR,
                f"{prefix}status__in": (AnnotationStatus.SUBMITTED, AnnotationStatus.LOCKED),
            }
        )
    return Q(**{f"{prefix}kind": AnnotationKind.PREDICTION, f"{prefix}model_version_id": model_version_id})


def _any_of(queries: Iterable[Q]) -> Q:
    combined = Q(pk__in=[])
    for query in queries:
        combined |= query
    return combined


def _split_value(split: str) -> str:
    return "" if split == UNASSIGNED else split


def selected_fields(plan: ExportPlan) -> QuerySet[Field]:
    """The fields of the asked cases and splits, whether or not they have anything to export."""
    fields = Field.objects.all()
    if plan.case_ids is not None:
        fields = fields.filter(smear__case_id__in=plan.case_ids)
    if plan.splits:
        fields = fields.filter(smear__case__patient__split__in=[_split_value(split) for split in plan.splits])
    return fields


def _has_set(sources: Iterable[ExportSource], model_version_id: int | None) -> Exists:
    sets = AnnotationSet.objects.filter(field=OuterRef("pk")).filter(
        _any_of(_set_q(source, model_version_id) for source in sources)
    )
    return Exists(sets)


def exported_fields(plan: ExportPlan, split: str | None = None) -> QuerySet[Field]:
    fields = selected_fields(plan).filter(_has_set(plan.instance_sources, plan.model_version_id))
    if split is not None and plan.split_all is None:
        fields = fields.filter(smear__case__patient__split=_split_value(split))
    return fields.order_by("id")


def export_splits(plan: ExportPlan) -> list[str]:
    if plan.split_all is not None:
        return [plan.split_all]
    present = set(exported_fields(plan).values_list("smear__case__patient__split", flat=True).distinct())
    return [split for split in SPLIT_ORDER if _split_value(split) in present]


def _category_q(category_ids: frozenset[int]) -> Q:
    special = {UNCOUNTABLE_CATEGORY_ID, UNCLASSIFIED_CATEGORY_ID}
    classes = [category_class_id(category) for category in category_ids if category not in special]
    query = Q(countable=True, cell_class_id__in=classes)
    if UNCOUNTABLE_CATEGORY_ID in category_ids:
        query |= Q(countable=False)
    if UNCLASSIFIED_CATEGORY_ID in category_ids:
        query |= Q(countable=True, cell_class__isnull=True)
    return query


CELL_COLUMNS = (
    "id",
    "annotation_set__field_id",
    "x",
    "y",
    "width",
    "height",
    "countable",
    "cell_class_id",
    "annotation_set__kind",
    "annotation_set__status",
    "annotation_set__source_name",
    "annotation_set__annotator_id",
    "annotation_set__model_version_id",
    "review_outcome",
    "detector_score",
    "confidence",
    "consensus_outcome",
    "cell_truth_outcome",
)


def _cells(plan: ExportPlan, split: str, sources: Iterable[ExportSource]) -> QuerySet[Cell]:
    sources = list(sources)
    cells = Cell.objects.filter(
        _any_of(_set_q(source, plan.model_version_id, "annotation_set__") for source in sources),
        annotation_set__field__in=exported_fields(plan, split).values("pk"),
    )
    if plan.category_ids is not None:
        cells = cells.filter(_category_q(plan.category_ids))
    # How an annotator's box fared in the double review: the outcome of the consensus cell made from it.
    outcome = Cell.objects.filter(source_cell=OuterRef("pk"), annotation_set__kind=AnnotationKind.CONSENSUS).values(
        "review_outcome"
    )[:1]
    none = Value(None, output_field=CharField())
    return cells.annotate(
        consensus_outcome=Subquery(outcome) if ExportSource.ANNOTATIONS in sources else none,
        # Which cell-level truth a predicted cell has (the review queue's), for its `truth_source`.
        cell_truth_outcome=cell_truth_outcome_of() if ExportSource.PREDICTIONS in sources else none,
    )


def instance_cells(plan: ExportPlan, split: str) -> QuerySet[Cell]:
    """Rows of CELL_COLUMNS for the split's instances file, in id order."""
    return _cells(plan, split, plan.instance_sources).order_by("id")


def prediction_cells(plan: ExportPlan, split: str) -> QuerySet[Cell]:
    return _cells(plan, split, [ExportSource.PREDICTIONS]).order_by("id")


def export_provenance(plan: ExportPlan) -> list[dict[str, str]]:
    """The imported datasets whose truth the export holds, with their licence and source (name order)."""
    names = (
        AnnotationSet.objects.filter(kind=AnnotationKind.IMPORTED, field__in=exported_fields(plan).values("pk"))
        .values_list("source_name", flat=True)
        .distinct()
    )
    return [
        {
            "name": dataset.name,
            "license": dataset.license,
            "url": dataset.source_url,
            "description": dataset.description,
        }
        for dataset in ImportedDataset.objects.filter(name__in=list(names))
    ]


# --- checking a request into a plan --------------------------------------------------------------------------------


def _sources(request: ExportRequest, user: Any, errors: list[FieldError]) -> frozenset[ExportSource]:
    sources: set[ExportSource] = set()
    for value in request.sources:
        try:
            sources.add(ExportSource(value))
        except ValueError:
            errors.append(FieldError("sources", f"{value!r} is not one of {', '.join(ExportSource)}"))
    if user is not None:
        allowed = frozenset().union(*(SOURCES_BY_ROLE.get(role, frozenset()) for role in roles_of(user)))
        refused = sorted(sources - allowed)
        if refused:
            raise PermissionDenied(f"Your role may not export these sources: {', '.join(refused)}.", field="sources")
    if not sources and not errors:
        errors.append(FieldError("sources", "name at least one source"))
    return frozenset(sources)


def _case_ids(request: ExportRequest, errors: list[FieldError]) -> tuple[int, ...] | None:
    if not request.cases:
        return None
    found = dict(Case.objects.filter(code__in=request.cases).values_list("code", "id"))
    missing = [code for code in request.cases if code not in found]
    if missing:
        errors.append(FieldError("cases", f"no case with the code(s) {', '.join(missing)}"))
    return tuple(found.values())


def _splits(request: ExportRequest, errors: list[FieldError]) -> tuple[str, ...]:
    unknown = [split for split in request.splits if split not in SPLIT_ORDER]
    if unknown:
        errors.append(FieldError("splits", f"{', '.join(unknown)}: a split is one of {', '.join(SPLIT_ORDER)}"))
    return tuple(split for split in SPLIT_ORDER if split in request.splits)


def _split_all(request: ExportRequest, errors: list[FieldError]) -> str | None:
    if request.split_all is None:
        return None
    if request.split_all not in Split.values:
        errors.append(FieldError("split_all", f"{request.split_all!r} is not one of {', '.join(Split.values)}"))
    elif request.splits:
        errors.append(FieldError("split_all", "puts every image into one split; leave out splits"))
    return request.split_all


def _category_ids(request: ExportRequest, errors: list[FieldError]) -> frozenset[int] | None:
    if not request.classes:
        return None
    ids: set[int] = set()
    for value in request.classes:
        try:
            ids.add(category_id_of(value))
        except KeyError:
            errors.append(
                FieldError("classes", f"{value!r} is not a class name, 'uncountable', 'unclassified' or category id")
            )
    return frozenset(ids)


def _model_version(plan: ExportPlan, request: ExportRequest) -> int | None:
    """The one model version whose predictions are exported: the one asked for, else the active classifier when it
    predicted the exported fields, else the only one there is."""
    human = plan.sources & set(HUMAN_SOURCES)
    fields = selected_fields(plan)
    if human:
        fields = fields.filter(_has_set(human, None))
    predictions = AnnotationSet.objects.filter(kind=AnnotationKind.PREDICTION, field__in=fields.values("pk"))
    # Distinct versions (a set: the model's default ordering would otherwise make DISTINCT repeat a version per set).
    versions = sorted(set(predictions.values_list("model_version_id", flat=True)))
    if request.model_version is not None:
        if request.model_version not in versions:
            raise ValidationFailed(
                f"Model version {request.model_version} has no predictions on the exported fields "
                f"(versions with predictions there: {', '.join(map(str, versions)) or 'none'}).",
                field="model_version",
            )
        return request.model_version
    active = predictions.filter(model_version__status="active").values_list("model_version_id", flat=True).first()
    if active is not None:
        return active  # default: the active classifier's predictions (training's ModelStatus.ACTIVE)
    if len(versions) != 1:
        reason = "none has predictions" if not versions else f"choose one of {', '.join(map(str, versions))}"
        raise ValidationFailed(f"Predictions need exactly one model version: {reason}.", field="model_version")
    return versions[0]


def export_plan(request: ExportRequest, *, user: Any = None) -> ExportPlan:
    """Check an export request (a user's role limits the sources; None is the command line) into a plan."""
    errors: list[FieldError] = []
    sources = _sources(request, user, errors)
    plan = ExportPlan(
        request=request,
        sources=sources,
        case_ids=_case_ids(request, errors),
        splits=_splits(request, errors),
        category_ids=_category_ids(request, errors),
        model_version_id=None,
        split_all=_split_all(request, errors),
    )
    if errors:
        raise ValidationFailed("The export request is not valid.", errors=errors)
    if plan.with_results:
        plan = dataclasses.replace(plan, model_version_id=_model_version(plan, request))
    selected = selected_fields(plan).count()
    exported = exported_fields(plan).count()
    if not exported:
        raise ValidationFailed(
            f"Nothing to export: {selected} field(s) match the cases and splits, and none has "
            f"{' or '.join(sorted(plan.instance_sources))} to export.",
            field="sources",
        )
    return dataclasses.replace(plan, left_out={"fields_without_the_source": selected - exported})
