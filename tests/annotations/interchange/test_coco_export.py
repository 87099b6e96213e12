"""COCO export, checked with the tools researchers use (pycocotools COCO, loadRes, COCOeval)."""

from __future__ import annotations

import io
import json
import tracemalloc
import zipfile
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from aicell.errors import PermissionDenied, ValidationFailed
from aicell.roles import Role
from annotations.interchange import coco_export
from annotations.interchange.coco_export import coco_export_write
from annotations.interchange.coco_format import class_category_id
from annotations.interchange.export_selection import ExportRequest, export_plan
from annotations.models import (
    AnnotationKind,
    AnnotationStatus,
    Cell,
    CellReview,
    CellReviewStatus,
    CellVerdict,
    ReviewOutcome,
)
from annotations.taxonomy import CELL_CLASSES
from tests.annotations.interchange.builders import zip_entries
from tests.factories import (
    AnnotationSetFactory,
    CaseFactory,
    CellFactory,
    FieldFactory,
    ModelVersionFactory,
    PatientFactory,
    SmearFactory,
    UserFactory,
    image_bytes,
)

pytestmark = pytest.mark.django_db

SECRET_CODES = ("PATIENT-DOE-JANE", "CASE-2024-117", "SMEAR-X9")
ORIGINAL_NAME = "jane_doe_2024-03-01.jpg"


def _exif_jpeg(seed: int) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"
    exif[0x9003] = "2024:03:01 09:15:00"
    return image_bytes(640, 480, seed=seed, exif=exif.tobytes())


@dataclass
class World:
    truth_cells: dict[str, list[Any]]  # split -> cells of locked truth sets
    hidden_cells: list[Any]  # drafts and unfinished consensus: never in a consensus export
    annotator_cells: list[Any]  # submitted annotator work
    fields: dict[str, list[Any]]
    annotators: list[Any]


def box(x: float, y: float, width: float, height: float, cell_class: int | None, **extra: Any) -> dict[str, Any]:
    return {"x": x, "y": y, "width": width, "height": height, "cell_class_id": cell_class, **extra}


def _field(split: str, seed: int, **kwargs: Any) -> Any:
    patient = PatientFactory(split=split)
    smear = SmearFactory(case=CaseFactory(patient=patient))
    return FieldFactory(smear=smear, seed=seed, **kwargs)


def _truth(field: Any, kind: str, cells: list[dict[str, Any]], **kwargs: Any) -> list[Any]:
    annotation_set = AnnotationSetFactory(
        field=field, kind=kind, annotator=None, status=AnnotationStatus.LOCKED, **kwargs
    )
    return [CellFactory(annotation_set=annotation_set, **cell) for cell in cells]


@pytest.fixture
def world() -> World:
    a1, a2 = UserFactory(roles=[Role.ANNOTATOR]), UserFactory(roles=[Role.ANNOTATOR])
    train = _field("train", 1, data=_exif_jpeg(1), original_name=ORIGINAL_NAME)
    train.smear.case.patient.code, train.smear.case.code, train.smear.code = SECRET_CODES
    train.smear.case.patient.save()
    train.smear.case.save()
    train.smear.save()
    train2, test, unassigned, unfinished = _field("train", 2), _field("test", 3), _field("", 4), _field("train", 5)
    agreed = box(10, 10, 50, 40, 11, review_outcome=ReviewOutcome.AGREED)
    resolved = box(100.5, 80.25, 60, 55, 3, review_outcome=ReviewOutcome.RESOLVED)
    uncountable = box(300, 200, 40, 40, 12, countable=False)
    truth = {
        "train": _truth(train, AnnotationKind.CONSENSUS, [agreed, resolved, uncountable])
        + _truth(train2, AnnotationKind.IMPORTED, [box(5, 6, 70, 70, None)], source_name="BCCD"),
        "test": _truth(test, AnnotationKind.CONSENSUS, [box(20, 30, 45, 45, 0)]),
        "unassigned": _truth(unassigned, AnnotationKind.IMPORTED, [box(1, 2, 3, 4, 20)]),
    }
    draft_consensus = AnnotationSetFactory(field=unfinished, kind=AnnotationKind.CONSENSUS, annotator=None)
    submitted = AnnotationSetFactory(field=train, annotator=a1, status=AnnotationStatus.SUBMITTED)
    draft = AnnotationSetFactory(field=train, annotator=a2)
    annotator_cells = [CellFactory(annotation_set=submitted, x=11, y=11, width=48, height=40, cell_class_id=11)]
    # The agreed consensus cell came from the first annotator's box.
    Cell.objects.filter(pk=truth["train"][0].pk).update(source_cell=annotator_cells[0])
    hidden = [CellFactory(annotation_set=draft_consensus), CellFactory(annotation_set=draft, cell_class_id=7)]
    fields = {"train": [train, train2], "test": [test], "unassigned": [unassigned]}
    return World(truth, hidden, annotator_cells, fields, [a1, a2])


def export(request: ExportRequest, **kwargs: Any) -> dict[str, bytes]:
    buffer = io.BytesIO()
    coco_export_write(export_plan(request, **kwargs), buffer)
    return zip_entries(buffer.getvalue())


def load_coco(tmp_path: Path, entries: dict[str, bytes], name: str) -> COCO:
    path = tmp_path / name.replace("/", "_")
    path.write_bytes(entries[name])
    with redirect_stdout(io.StringIO()):
        return COCO(str(path))


def test_the_default_export_is_locked_truth_only_in_one_coco_file_per_split(world: World, tmp_path: Path) -> None:
    entries = export(ExportRequest())
    json_names = sorted(name for name in entries if name.endswith(".json"))
    assert json_names == [f"annotations/instances_{split}.json" for split in ("test", "train", "unassigned")]
    for split, cells in world.truth_cells.items():
        coco = load_coco(tmp_path, entries, f"annotations/instances_{split}.json")
        assert sorted(coco.getAnnIds()) == sorted(cell.pk for cell in cells)
        assert sorted(coco.getImgIds()) == sorted(field.pk for field in world.fields[split])
        for image in coco.loadImgs(coco.getImgIds()):
            stored = Image.open(io.BytesIO(entries[f"images/{split}/{image['file_name']}"]))
            assert stored.size == (image["width"], image["height"])
            assert image["split"] == split
        for cell in cells:
            [annotation] = coco.loadAnns([cell.pk])
            assert annotation["bbox"] == [cell.x, cell.y, cell.width, cell.height]
            assert annotation["area"] == cell.width * cell.height
            assert annotation["iscrowd"] == 0
    hidden = {cell.pk for cell in world.hidden_cells + world.annotator_cells}
    exported = {a["id"] for name in json_names for a in json.loads(entries[name])["annotations"]}
    assert not hidden & exported
    assert len(entries) == len(json_names) + 4  # and the four exported images


def test_categories_are_the_fixed_taxonomy_plus_uncountable_and_unclassified(world: World, tmp_path: Path) -> None:
    entries = export(ExportRequest(splits=("test",)))  # a split with one class only: ids must not be remapped
    coco = load_coco(tmp_path, entries, "annotations/instances_test.json")
    categories = coco.loadCats(coco.getCatIds())
    expected = [(class_category_id(spec.id), spec.name, spec.lineage.value) for spec in CELL_CLASSES]
    expected += [(22, "uncountable", "cell"), (23, "unclassified", "cell")]
    assert [(c["id"], c["name"], c["supercategory"]) for c in categories] == expected
    [annotation] = coco.loadAnns(coco.getAnnIds())
    assert annotation["category_id"] == 1  # myeloblast, taxonomy id 0


def test_each_box_says_where_it_came_from(world: World, tmp_path: Path) -> None:
    coco = load_coco(tmp_path, export(ExportRequest(splits=("train",))), "annotations/instances_train.json")
    agreed, resolved, uncountable, imported = (coco.loadAnns([c.pk])[0] for c in world.truth_cells["train"])
    assert (agreed["source"], agreed["review_state"], agreed["review_outcome"], agreed["annotators_agreed"]) == (
        "consensus",
        "locked",
        "agreed",
        True,
    )
    assert (agreed["category_id"], agreed["cell_class"], agreed["countable"]) == (12, 11, True)
    assert (resolved["annotators_agreed"], resolved["category_id"]) == (False, 4)
    assert (uncountable["category_id"], uncountable["cell_class"], uncountable["countable"]) == (22, 12, False)
    assert (imported["source"], imported["category_id"], imported["annotators_agreed"]) == ("imported:BCCD", 23, None)


BOX_FIELDS = (
    "source",
    "review_state",
    "review_outcome",
    "annotators_agreed",
    "truth_source",
    "countable",
    "cell_class",
)


def test_boxes_are_box_only_coco_with_our_fields_also_under_attributes(world: World) -> None:
    """An empty "segmentation" keeps Datumaro quiet and pycocotools' helpers working; "attributes" is where
    Datumaro and CVAT keep extra fields (they drop top-level ones)."""
    version = _predict(world)
    entries = export(ExportRequest(sources=("consensus", "predictions"), model_version=version.pk))
    train = json.loads(entries["annotations/instances_train.json"])
    for annotation in train["annotations"]:
        assert (annotation["segmentation"], annotation["iscrowd"]) == ([], 0)
        assert annotation["area"] == annotation["bbox"][2] * annotation["bbox"][3]
        assert annotation["attributes"] == {key: annotation[key] for key in BOX_FIELDS}
    for image in train["images"]:
        assert image["attributes"] == {"case": image["case"], "smear": image["smear"], "split": "train"}
    only_predictions = export(ExportRequest(sources=("predictions",), model_version=version.pk))
    [first, *_] = json.loads(only_predictions["annotations/instances_train.json"])["annotations"]
    scores = ("score", "detector_score", "class_confidence")
    assert {key: first["attributes"][key] for key in scores} == {key: first[key] for key in scores}
    assert first["attributes"]["source"] == f"model:{version.pk}"


def test_each_box_says_which_truth_it_has(world: World) -> None:
    """Field-level truth (consensus, imported), the review queue's cell-level truth of a predicted cell, or none; on
    a field with field-level truth, a predicted cell's own review truth gives way to the field's."""
    version = _predict(world)
    unfinished = world.hidden_cells[0].annotation_set.field
    predictions = AnnotationSetFactory(
        field=unfinished, kind=AnnotationKind.PREDICTION, annotator=None, model_version=version
    )
    reviewed, unreviewed = (CellFactory(annotation_set=predictions, x=10 + 60 * i, cell_class_id=3) for i in range(2))
    on_truth_field = Cell.objects.filter(
        annotation_set__model_version=version, annotation_set__field=world.fields["train"][0]
    ).first()
    for cell, outcome in ((reviewed, ReviewOutcome.ADJUDICATED), (on_truth_field, ReviewOutcome.AGREED)):
        CellReview.objects.create(
            cell=cell, field=cell.annotation_set.field, status=CellReviewStatus.TRUTH, verdict=CellVerdict.CLASS,
            cell_class_id=3, x=cell.x, y=cell.y, width=cell.width, height=cell.height, outcome=outcome,
        )  # fmt: skip

    def truth_of(*sources: str) -> dict[int, str]:
        entries = export(ExportRequest(sources=sources, model_version=version.pk))
        annotations = json.loads(entries["annotations/instances_train.json"])["annotations"]
        return {annotation["id"]: annotation["attributes"]["truth_source"] for annotation in annotations}

    agreed, resolved, uncountable, imported = world.truth_cells["train"]
    truth = truth_of("consensus")
    assert [truth[c.pk] for c in (agreed, resolved, uncountable, imported)] == ["consensus"] * 3 + ["imported"]
    truth = truth_of("predictions")
    assert truth[reviewed.pk] == "cell_adjudicated"
    assert truth[unreviewed.pk] == "none"
    assert truth[on_truth_field.pk] == "none"


@pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*")  # numpy 2's copy keyword in mask.decode
def test_pycocotools_helpers_work_on_the_export(world: World, tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from pycocotools import mask as mask_utils

    version = _predict(world)
    entries = export(ExportRequest(sources=("consensus", "predictions"), model_version=version.pk))
    truth = load_coco(tmp_path, entries, "annotations/instances_train.json")
    image = truth.loadImgs(world.fields["train"][0].pk)[0]
    annotations = truth.loadAnns(truth.getAnnIds(imgIds=[image["id"]]))
    figure = plt.figure()
    try:
        plt.imshow(Image.open(io.BytesIO(entries[f"images/train/{image['file_name']}"])))
        truth.showAnns(annotations, draw_bbox=True)  # raised "datasetType not supported" without "segmentation"
        assert len(figure.axes[0].collections) >= 2  # the (empty) polygon layer and the boxes
        figure.canvas.draw()
    finally:
        plt.close(figure)
    # Box-only annotations have no mask to give annToMask; a box's mask comes from its bbox, as pycocotools does it.
    boxes = np.array([annotations[0]["bbox"]], dtype=np.float64)
    box_mask = mask_utils.decode(mask_utils.frPyObjects(boxes, image["height"], image["width"]))[:, :, 0]
    assert box_mask.sum() == pytest.approx(boxes[0, 2] * boxes[0, 3], rel=0.1)
    results = tmp_path / "predictions_train.json"
    results.write_bytes(entries["results/predictions_train.json"])
    with redirect_stdout(io.StringIO()):
        predictions = truth.loadRes(str(results))
    assert len(predictions.getAnnIds()) == len(world.truth_cells["train"])
    assert _average_precision(tmp_path, entries, "train") == pytest.approx(1.0)


def test_no_patient_identifier_upload_name_or_exif_leaves_the_platform(world: World) -> None:
    entries = export(ExportRequest())
    for name, data in entries.items():
        for secret in (*SECRET_CODES, ORIGINAL_NAME, "SecretCam", "2024:03:01"):
            assert secret.encode() not in data, f"{secret} in {name}"
    train = json.loads(entries["annotations/instances_train.json"])
    [image] = [i for i in train["images"] if i["id"] == world.fields["train"][0].pk]
    assert image["case"].startswith("c-")
    assert image["smear"].startswith("s-")
    assert not Image.open(io.BytesIO(entries[f"images/train/{image['file_name']}"])).getexif()
    # Pseudonyms are stable: a second export names the case the same way.
    again = json.loads(export(ExportRequest())["annotations/instances_train.json"])
    assert [i["case"] for i in again["images"]] == [i["case"] for i in train["images"]]


def test_splits_unassigned_and_class_filters(world: World) -> None:
    entries = export(ExportRequest(splits=("unassigned",)))
    assert [name for name in entries if name.endswith(".json")] == ["annotations/instances_unassigned.json"]
    entries = export(ExportRequest(classes=("lymphoblast", "uncountable")))
    train = json.loads(entries["annotations/instances_train.json"])
    assert sorted(a["id"] for a in train["annotations"]) == [
        world.truth_cells["train"][0].pk,
        world.truth_cells["train"][2].pk,
    ]
    assert len(train["categories"]) == len(CELL_CLASSES) + 2
    assert len(train["images"]) == 2  # the images stay; only boxes of other classes are left out


def _predict(world: World, shift: float = 0.0, score: float = 0.9) -> Any:
    """A model version whose predictions equal the truth (or are shifted by `shift` of each box's width)."""
    version = ModelVersionFactory()
    for split, fields in world.fields.items():
        for field in fields:
            predictions = AnnotationSetFactory(
                field=field, kind=AnnotationKind.PREDICTION, annotator=None, model_version=version
            )
            for cell in (c for c in world.truth_cells[split] if c.annotation_set.field_id == field.pk):
                x = min(cell.x + shift * cell.width, field.width - cell.width)
                CellFactory(
                    annotation_set=predictions, x=x, y=cell.y, width=cell.width, height=cell.height,
                    countable=cell.countable, cell_class_id=cell.cell_class_id, detector_score=score, confidence=0.8,
                )  # fmt: skip
    return version


def _average_precision(tmp_path: Path, entries: dict[str, bytes], split: str) -> float:
    truth = load_coco(tmp_path, entries, f"annotations/instances_{split}.json")
    results = tmp_path / f"predictions_{split}.json"
    results.write_bytes(entries[f"results/predictions_{split}.json"])
    with redirect_stdout(io.StringIO()):
        evaluation = COCOeval(truth, truth.loadRes(str(results)), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return float(evaluation.stats[0])


def test_predictions_equal_to_the_truth_score_ap_1_and_perturbed_ones_less(world: World, tmp_path: Path) -> None:
    exact = _predict(world)
    entries = export(ExportRequest(sources=("consensus", "predictions"), model_version=exact.pk))
    results = json.loads(entries["results/predictions_train.json"])
    assert [r["score"] for r in results] == pytest.approx([0.9 * 0.8] * len(results))
    assert {r["source"] for r in results} == {f"model:{exact.pk}"}
    for split in ("train", "test", "unassigned"):
        assert _average_precision(tmp_path, entries, split) == pytest.approx(1.0)
    shifted = _predict(world, shift=0.4)
    entries = export(ExportRequest(sources=("consensus", "predictions"), model_version=shifted.pk))
    assert _average_precision(tmp_path, entries, "train") < 1.0


def test_predictions_need_exactly_one_model_version(world: World) -> None:
    with pytest.raises(ValidationFailed, match="none has predictions"):
        export_plan(ExportRequest(sources=("consensus", "predictions")))
    first = _predict(world)
    second = _predict(world)
    # Each version named once, however many fields it predicted (it read "choose one of 3, 3, 3, 3, ...").
    with pytest.raises(ValidationFailed, match=rf"choose one of {first.pk}, {second.pk}\.$"):
        export_plan(ExportRequest(sources=("consensus", "predictions")))
    # With an active classifier among them, it is the default.
    second.status = "active"
    second.save()
    assert export_plan(ExportRequest(sources=("consensus", "predictions"))).model_version_id == second.pk
    only_predictions = export(ExportRequest(sources=("predictions",), model_version=first.pk))
    train = json.loads(only_predictions["annotations/instances_train.json"])
    assert {a["source"] for a in train["annotations"]} == {f"model:{first.pk}"}
    assert all(a["score"] == pytest.approx(0.72) for a in train["annotations"])


def test_annotator_work_is_a_separate_source_with_pseudonymous_annotators(world: World) -> None:
    entries = export(ExportRequest(sources=("annotations",)))
    train = json.loads(entries["annotations/instances_train.json"])
    [box] = train["annotations"]  # the draft of the second annotator stays out
    assert box["id"] == world.annotator_cells[0].pk
    assert box["source"].startswith("annotator:a-")
    assert world.annotators[0].username not in box["source"]
    assert (box["review_state"], box["review_outcome"], box["annotators_agreed"]) == ("submitted", "agreed", True)
    assert list(entries) == ["annotations/instances_train.json", f"images/train/{world.fields['train'][0].pk:08d}.jpg"]


def test_requests_are_checked_before_anything_is_written(world: World) -> None:
    with pytest.raises(ValidationFailed) as caught:
        export_plan(ExportRequest(cases=("NO-SUCH-CASE",), splits=("holdout",), classes=("dragon",)))
    assert {error.field for error in caught.value.errors} == {"cases", "splits", "classes"}
    with pytest.raises(PermissionDenied):
        export_plan(ExportRequest(sources=("annotations",)), user=UserFactory(roles=[Role.RESEARCHER]))
    empty_case: Any = CaseFactory()
    with pytest.raises(ValidationFailed, match="Nothing to export"):
        export_plan(ExportRequest(cases=(empty_case.code,)))


def test_the_command_writes_the_zip_only_when_complete(world: World, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out = out_dir / "export.zip"
    with redirect_stdout(io.StringIO()):
        call_command("export_coco", f"--out={out}", "--split", "train", "test")
    with zipfile.ZipFile(out) as archive:
        assert "annotations/instances_train.json" in archive.namelist()
    failed = out_dir / "failed.zip"
    with pytest.raises(CommandError, match="Nothing to export"):
        call_command("export_coco", f"--out={failed}", f"--case={CaseFactory().code}")
    assert sorted(p.name for p in out_dir.iterdir()) == ["export.zip"]


# --- memory stays flat -------------------------------------------------------------------------------------------


def _peak_bytes(request: ExportRequest) -> int:
    plan = export_plan(request)
    tracemalloc.start()
    try:
        coco_export_write(plan, io.BytesIO())
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _field_with_cells(count: int) -> Any:
    field = FieldFactory(width=640, height=480)
    annotation_set = AnnotationSetFactory(
        field=field, kind=AnnotationKind.IMPORTED, annotator=None, status=AnnotationStatus.LOCKED
    )
    Cell.objects.bulk_create(
        Cell(annotation_set=annotation_set, **box(float(i % 600), float(i % 440), 30.0, 30.0, i % 21))
        for i in range(count)
    )
    return field


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(coco_export, "CHUNK_ROWS", 100)


def test_memory_does_not_grow_with_the_number_of_annotations(small_chunks: None) -> None:
    small, large = _field_with_cells(200), _field_with_cells(4000)
    small_peak = _peak_bytes(ExportRequest(cases=(small.smear.case.code,)))
    large_peak = _peak_bytes(ExportRequest(cases=(large.smear.case.code,)))
    # Holding the 3,800 extra boxes (about 400 bytes of JSON each, more as dicts) would add well over 1.5 MB.
    assert large_peak - small_peak < 300_000, (small_peak, large_peak)
