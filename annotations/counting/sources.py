"""Which cells a differential counts, by source (issue 7 "Source chosen by the caller").

- "consensus" (default): the truth set of each field (`annotations.truth`: locked consensus, or imported truth;
  a consensus reopened for changes counts again once it is locked); fields without one are not counted.
- "consensus+model": the truth set where the field has one, else the prediction set of the active classifier.
- "model": the prediction sets of the active classifier only.
- "mine": the annotator sets of the user who asks ("my work"); nobody else's.

The prediction set of a field is the one made by the active classifier model version (stage classifier, status
active; at most one per field and version). Fields that have nothing from the chosen source are listed, never
silently mixed with another source.

The queries do not depend on the number of fields: one for the fields, one for the active classifier, one for
the chosen sets, one for their cells (with the annotator each consensus cell came from), one for the model
versions named by the sets' pipelines.

Model versions belong to the training app: it registers how to read them (`MODEL_VERSION_READERS`, in its app
config), so counting never imports training.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet

from annotations.counting.differential import CountedCell
from annotations.counting.reports import (
    FROM_ANNOTATOR,
    FROM_CONSENSUS,
    FROM_IMPORTED,
    FROM_MODEL,
    FROM_NOTHING,
    FieldSource,
    ModelVersionRef,
)
from annotations.models import AnnotationKind, AnnotationSet, Cell, Field
from annotations.truth import TRUTH_SOURCES, cell_truth_outcome_of, truth, truth_q, truth_source


class Source(StrEnum):
    CONSENSUS = "consensus"
    CONSENSUS_PLUS_MODEL = "consensus+model"
    MODEL = "model"
    MINE = "mine"


SOURCES: tuple[str, ...] = tuple(source.value for source in Source)
_FROM_KIND = {
    AnnotationKind.CONSENSUS: FROM_CONSENSUS,
    AnnotationKind.IMPORTED: FROM_IMPORTED,
    AnnotationKind.PREDICTION: FROM_MODEL,
    AnnotationKind.ANNOTATOR: FROM_ANNOTATOR,
}
_MISSING = {
    Source.CONSENSUS: "have no consensus yet",
    Source.CONSENSUS_PLUS_MODEL: "have neither consensus nor a prediction of the active classifier",
    Source.MODEL: "have no prediction of the active classifier",
    Source.MINE: "have no annotation of yours",
}


def parse_source(raw: str | None) -> Source:
    """The source named by `raw` (None: the default); ValueError for an empty value, or listing the valid values
    for an unknown one.

    A query string decodes an unescaped "+" to a space, so "consensus model" is read as "consensus+model".
    """
    if raw is None:
        return Source.CONSENSUS
    if raw == "":
        # "?source=" names a value, an empty one; only leaving the parameter out asks for the default.
        raise ValueError("must not be empty; leave it out for the default")
    value = raw.strip().replace(" ", "+")
    if value not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}; got {raw!r}")
    return Source(value)


@dataclass(frozen=True)
class ModelVersionReader:
    """What counting reads of the model registry: the active classifier's id, and descriptions of versions."""

    active_classifier_id: Callable[[], int | None]
    refs: Callable[[Collection[int]], tuple[ModelVersionRef, ...]]


# The training app appends its reader in its app config; without one there are no model versions to count from.
MODEL_VERSION_READERS: list[ModelVersionReader] = []
_NO_MODEL_VERSIONS = ModelVersionReader(active_classifier_id=lambda: None, refs=lambda ids: ())


def _model_version_reader() -> ModelVersionReader:
    return MODEL_VERSION_READERS[-1] if MODEL_VERSION_READERS else _NO_MODEL_VERSIONS


@dataclass(frozen=True)
class Annotator:
    id: int
    username: str


@dataclass(frozen=True)
class GatheredCells:
    source: Source
    cells: tuple[CountedCell, ...]
    fields: tuple[FieldSource, ...]
    model_versions: tuple[ModelVersionRef, ...]
    annotators: tuple[Annotator, ...]
    imported_from: tuple[str, ...]
    warnings: tuple[str, ...]
    # Which truth the gathered cells have (`annotations.truth.truth_source`), every label present.
    cells_by_truth: dict[str, int]

    @property
    def fields_by_source(self) -> dict[str, int]:
        counts = Counter(field.source for field in self.fields)
        labels = (FROM_ANNOTATOR,) if self.source is Source.MINE else (FROM_CONSENSUS, FROM_IMPORTED, FROM_MODEL)
        return {label: counts[label] for label in (*labels, FROM_NOTHING)}


def gather_cells(fields: QuerySet[Field], source: Source, user: Any = None) -> GatheredCells:
    """The cells to count over `fields` (a smear's or a case's) from `source`, with their provenance. `user` is
    whose work "mine" means (nobody's without one). The report and the cell gallery both read this, so what the
    gallery shows for a source is what the report counts for it."""
    field_rows = list(fields.order_by("id").values_list("id", "smear_id"))
    reader = _model_version_reader()
    classifier = None if source in (Source.CONSENSUS, Source.MINE) else reader.active_classifier_id()
    chosen = AnnotationSet.objects.filter(field__in=fields.values("pk")).filter(
        _set_choice(source, classifier, getattr(user, "pk", None))
    )
    set_rows = list(chosen.values_list("id", "field_id", "kind", "source_name", "pipeline"))
    cell_rows = list(
        Cell.objects.filter(annotation_set__in=chosen.values("pk"))
        .annotate(cell_truth_outcome=cell_truth_outcome_of())
        .order_by("id")
        .values_list(
            "id",
            "annotation_set_id",
            "countable",
            "cell_class_id",
            "source_cell__annotation_set__kind",
            "source_cell__annotation_set__annotator_id",
            "source_cell__annotation_set__annotator__username",
            "annotation_set__kind",
            "annotation_set__status",
            "cell_truth_outcome",
        )
    )
    cells = tuple(CountedCell(cell_id, cell_class, countable) for cell_id, _, countable, cell_class, *_ in cell_rows)
    annotators = {
        Annotator(user_id, username)
        for *_, kind, user_id, username, _, _, _ in cell_rows
        if kind == AnnotationKind.ANNOTATOR and user_id is not None
    }
    by_truth = Counter(truth_source(*row[-3:]) for row in cell_rows)
    imported = {name for _, _, kind, name, _ in set_rows if kind == AnnotationKind.IMPORTED and name}
    field_sources = _field_sources(field_rows, set_rows, Counter(row[1] for row in cell_rows))
    pipeline_ids = {_as_id(value) for *_, pipeline in set_rows for value in (pipeline or {}).values()}
    if classifier is not None and any(kind == AnnotationKind.PREDICTION for _, _, kind, _, _ in set_rows):
        pipeline_ids.add(classifier)
    return GatheredCells(
        source=source,
        cells=cells,
        fields=field_sources,
        model_versions=reader.refs(sorted(model_id for model_id in pipeline_ids if model_id is not None)),
        annotators=tuple(sorted(annotators, key=lambda annotator: annotator.id)),
        imported_from=tuple(sorted(imported)),
        warnings=_warnings(source, classifier, field_sources),
        cells_by_truth={label: by_truth[label] for label in TRUTH_SOURCES},
    )


def _set_choice(source: Source, classifier: int | None, user_id: int | None = None) -> Q:
    if source is Source.MINE:
        return Q(kind=AnnotationKind.ANNOTATOR, annotator_id=user_id) if user_id is not None else Q(pk__in=[])
    is_truth = truth_q()
    if source is Source.CONSENSUS:
        return is_truth
    if classifier is None:
        return is_truth if source is Source.CONSENSUS_PLUS_MODEL else Q(pk__in=[])
    prediction = Q(kind=AnnotationKind.PREDICTION, model_version_id=classifier)
    if source is Source.MODEL:
        return prediction
    field_has_truth = Exists(truth().filter(field=OuterRef("field")))
    return is_truth | (prediction & Q(~field_has_truth))


def _field_sources(
    field_rows: list[tuple[int, int]], set_rows: list[tuple[Any, ...]], cells_per_set: Counter[int]
) -> tuple[FieldSource, ...]:
    set_of_field = {field_id: (set_id, kind) for set_id, field_id, kind, _, _ in set_rows}
    sources = []
    for field_id, smear_id in field_rows:
        set_id, kind = set_of_field.get(field_id, (None, None))
        label = _FROM_KIND[AnnotationKind(kind)] if kind is not None else FROM_NOTHING
        sources.append(FieldSource(field_id, smear_id, label, set_id, cells_per_set[set_id] if set_id else 0))
    return tuple(sources)


def _as_id(value: Any) -> int | None:
    """A model version id from a set's pipeline JSON; anything else there is not a version reference."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _warnings(source: Source, classifier: int | None, fields: tuple[FieldSource, ...]) -> tuple[str, ...]:
    warnings = []
    if not fields:
        warnings.append("no field images uploaded yet")
    if source in (Source.CONSENSUS_PLUS_MODEL, Source.MODEL) and classifier is None:
        warnings.append("no active classifier model version: no model predictions were used")
    missing = sum(1 for field in fields if field.source == FROM_NOTHING)
    if missing:
        warnings.append(f"{missing} of {len(fields)} field(s) {_MISSING[source]} and were not counted")
    return tuple(warnings)
