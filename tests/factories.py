"""factory_boy factories for the domain data, and small real images made in memory."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from typing import Any

import factory
from django.contrib.auth.models import Group, User
from django.core.files.base import ContentFile
from PIL import Image

from aicell.roles import Role
from annotations.models import (
    AnnotationKind,
    AnnotationSet,
    AnnotationStatus,
    Assignment,
    Case,
    Cell,
    Field,
    FieldStatus,
    Patient,
    Smear,
)
from annotations.review.services import field_review_start_if_ready
from annotations.taxonomy import class_by_name
from training.core.stages import CLASSIFIER
from training.models import ModelStatus, ModelVersion

PASSWORD = "correct-horse-battery-staple"


def image_bytes(width: int = 64, height: int = 48, image_format: str = "JPEG", seed: int = 0, **save: Any) -> bytes:
    """A small real image whose pixels depend on `seed`, so two seeds never share a hash."""
    image = Image.new("RGB", (width, height), (200, 180, 190))
    for i in range(min(width, height) // 2):
        image.putpixel(((seed * 7 + i) % width, (seed * 3 + i) % height), (seed % 256, 30, 90))
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **save)
    return buffer.getvalue()


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def roles(self, create: bool, extracted: list[Role] | None, **kwargs: Any) -> None:
        for role in extracted or []:
            self.groups.add(Group.objects.get(name=role.value))
        self.save()


class PatientFactory(factory.django.DjangoModelFactory[Patient]):
    class Meta:
        model = Patient

    code = factory.Sequence(lambda n: f"P{n:04d}")


class CaseFactory(factory.django.DjangoModelFactory[Case]):
    class Meta:
        model = Case

    patient = factory.SubFactory(PatientFactory)
    code = factory.Sequence(lambda n: f"C{n:04d}")


class SmearFactory(factory.django.DjangoModelFactory[Smear]):
    class Meta:
        model = Smear

    case = factory.SubFactory(CaseFactory)
    code = factory.Sequence(lambda n: f"S{n:03d}")


class FieldFactory(factory.django.DjangoModelFactory[Field]):
    """A stored field with a real image file (through the storage API, as uploads store them)."""

    class Meta:
        model = Field

    class Params:
        seed = factory.Sequence(lambda n: n)
        data = factory.LazyAttribute(lambda o: image_bytes(o.width, o.height, seed=o.seed))

    smear = factory.SubFactory(SmearFactory)
    width = 640
    height = 480
    format = "JPEG"
    sha256 = factory.LazyAttribute(lambda o: hashlib.sha256(o.data).hexdigest())
    byte_size = factory.LazyAttribute(lambda o: len(o.data))
    image = factory.LazyAttribute(lambda o: ContentFile(o.data, name="original.jpg"))
    thumbnail = factory.LazyAttribute(lambda o: ContentFile(o.data, name="thumbnail.jpg"))


class ModelVersionFactory(factory.django.DjangoModelFactory[ModelVersion]):
    class Meta:
        model = ModelVersion

    stage = CLASSIFIER.name
    profile = "cpu"
    architecture = "resnet18"


class AnnotationSetFactory(factory.django.DjangoModelFactory[AnnotationSet]):
    class Meta:
        model = AnnotationSet

    field = factory.SubFactory(FieldFactory)
    kind = AnnotationKind.ANNOTATOR
    annotator = factory.SubFactory(UserFactory, roles=[Role.ANNOTATOR])


class CellFactory(factory.django.DjangoModelFactory[Cell]):
    class Meta:
        model = Cell

    annotation_set = factory.SubFactory(AnnotationSetFactory)
    x = 10.0
    y = 20.0
    width = 50.0
    height = 40.0
    cell_class_id = 11


class AssignmentFactory(factory.django.DjangoModelFactory[Assignment]):
    """An assignment written directly (the service `assignment_create` is what the API uses)."""

    class Meta:
        model = Assignment

    field = factory.SubFactory(FieldFactory)
    annotator = factory.SubFactory(UserFactory, roles=[Role.ANNOTATOR])
    slot = factory.LazyAttribute(lambda o: 1 + Assignment.objects.filter(field=o.field).count())


def submitted_set(field: Any, annotator: Any, boxes: list[dict[str, Any]]) -> AnnotationSet:
    """An assigned annotator's submitted set with the given cells, written directly."""
    Assignment.objects.get_or_create(
        field=field, annotator=annotator, defaults={"slot": 1 + Assignment.objects.filter(field=field).count()}
    )
    annotation_set = AnnotationSetFactory(field=field, annotator=annotator, status="submitted")
    for box in boxes:
        CellFactory(annotation_set=annotation_set, **box)
    return annotation_set


def reviewed_field(
    annotator_a: Any, annotator_b: Any, boxes_a: list[dict[str, Any]], boxes_b: list[dict[str, Any]], **field: Any
) -> Field:
    """A field both annotators submitted, with its cross-check started (conflicts or consensus made)."""
    made: Any = FieldFactory(**{"status": FieldStatus.IN_ANNOTATION, **field})
    submitted_set(made, annotator_a, boxes_a)
    submitted_set(made, annotator_b, boxes_b)
    field_review_start_if_ready(made.pk, None)
    made.refresh_from_db()
    return made


def prediction_set(field: Any, boxes: list[dict[str, Any]]) -> AnnotationSet:
    """The active classifier's pre-labels of a field (only the active version's predictions are shown)."""
    predictions = AnnotationSetFactory(
        field=field, kind=AnnotationKind.PREDICTION, annotator=None, model_version=ActiveClassifierFactory()
    )
    for box in boxes:
        CellFactory(annotation_set=predictions, **box)
    return predictions


class TruthSetFactory(factory.django.DjangoModelFactory[AnnotationSet]):
    """The consensus of a field (use kind=AnnotationKind.IMPORTED for imported truth)."""

    class Meta:
        model = AnnotationSet

    field = factory.SubFactory(FieldFactory)
    kind = AnnotationKind.CONSENSUS
    status = AnnotationStatus.LOCKED


class ActiveClassifierFactory(ModelVersionFactory):
    """The active classifier: one per database (a second call returns it)."""

    class Meta:
        django_get_or_create = ("stage", "status")

    status = ModelStatus.ACTIVE


class PredictionSetFactory(factory.django.DjangoModelFactory[AnnotationSet]):
    class Meta:
        model = AnnotationSet

    field = factory.SubFactory(FieldFactory)
    kind = AnnotationKind.PREDICTION
    model_version = factory.SubFactory(ActiveClassifierFactory)
    status = AnnotationStatus.LOCKED


def add_cells(
    annotation_set: Any,
    classes: Mapping[str, int] | None = None,
    *,
    uncountable: int = 0,
    unclassified: int = 0,
    source_cells: list[Cell] | None = None,
) -> list[Cell]:
    """Bulk-create cells in `annotation_set` (an AnnotationSet, typed Any for factory results) by class name
    (`classes` {"lymphoblast": 30}), plus uncountable cells and countable cells without a class;
    `source_cells[i]` becomes the provenance of the i-th cell made."""
    specs: list[tuple[int | None, bool]] = [
        (class_by_name(name).id, True) for name, count in (classes or {}).items() for _ in range(count)
    ]
    specs += [(class_by_name("lymphoblast").id, False)] * uncountable + [(None, True)] * unclassified
    sources = list(source_cells or [])
    cells = [
        Cell(
            annotation_set=annotation_set,
            x=1.0,
            y=1.0,
            width=10.0,
            height=10.0,
            countable=countable,
            cell_class_id=class_id,
            source_cell=sources[index] if index < len(sources) else None,
        )
        for index, (class_id, countable) in enumerate(specs)
    ]
    return Cell.objects.bulk_create(cells)
