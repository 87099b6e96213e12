"""COCO import: round trips with the export, problems, duplicates, one transaction, annotator imports, zips."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from aicell.errors import ValidationFailed
from aicell.roles import Role
from annotations.interchange import dataset_import as importer
from annotations.interchange import dataset_write as writer
from annotations.interchange.archive import DirectoryDataset, ZipDataset
from annotations.interchange.coco_export import coco_export_write
from annotations.interchange.dataset_import import ImportOptions, dataset_import, import_annotator
from annotations.interchange.export_selection import ExportRequest, export_plan
from annotations.interchange.jobs import archive_limits
from annotations.models import (
    AnnotationKind,
    AnnotationSet,
    AnnotationStatus,
    AuditEvent,
    Cell,
    Field,
    FieldStatus,
)
from tests.annotations.interchange.builders import write_coco, zip_folder
from tests.factories import CaseFactory, UserFactory, image_bytes

pytestmark = pytest.mark.django_db

CATEGORIES = [
    {"id": 12, "name": "lymphoblast"},
    {"id": 6, "name": "neutrophilic segmented"},
    {"id": 22, "name": "uncountable"},
    {"id": 23, "name": "unclassified"},
]


def coco_folder(root: Path) -> Path:
    """Three images of 64x48 with boxes of every kind, as a COCO folder."""
    files = {f"img{i}.jpg": image_bytes(64, 48, seed=100 + i) for i in range(3)}
    images = [{"id": i + 1, "file_name": name, "width": 64, "height": 48} for i, name in enumerate(files)]
    annotations = [
        {"id": 1, "image_id": 1, "category_id": 12, "bbox": [1.5, 2.0, 20.0, 10.25], "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 6, "bbox": [30, 20, 30, 25]},
        {"id": 3, "image_id": 2, "category_id": 22, "bbox": [0, 0, 64, 48], "cell_class": 12},
        {"id": 4, "image_id": 2, "category_id": 23, "bbox": [10, 10, 5, 5]},
        {"id": 5, "image_id": 3, "category_id": 12, "bbox": [1, 1, 2, 2], "iscrowd": 1},
    ]
    return write_coco(root, images, annotations, files, categories=CATEGORIES)


def boxes_by_image(case: Any) -> set[tuple[str, float, float, float, float, bool, int | None]]:
    """What an import stored, keyed by image content so that it compares across imports."""
    cells = Cell.objects.filter(annotation_set__field__smear__case=case)
    return set(
        cells.values_list(
            "annotation_set__field__sha256", "x", "y", "width", "height", "countable", "cell_class_id"
        ).order_by()
    )


def run_import(files: Any, case: Any, **options: Any) -> importer.ImportReport:
    return dataset_import(files, ImportOptions(format="coco", case=case, **options), actor=None)


def test_a_coco_folder_imports_as_locked_truth(tmp_path: Path) -> None:
    case: Any = CaseFactory()
    report = run_import(DirectoryDataset(coco_folder(tmp_path)), case, source_name="lab-set")
    assert (report.fields, report.cells, report.unclassified_cells) == (3, 4, 1)
    assert [w.reason for w in report.warnings] == ["annotations[4]: a crowd region (iscrowd 1) is not a cell; skipped"]
    sha = {f.original_name: f.sha256 for f in Field.objects.filter(smear__case=case)}
    assert boxes_by_image(case) == {
        (sha["img0.jpg"], 1.5, 2.0, 20.0, 10.25, True, 11),
        (sha["img0.jpg"], 30.0, 20.0, 30.0, 25.0, True, 5),
        (sha["img1.jpg"], 0.0, 0.0, 64.0, 48.0, False, 12),  # an uncountable cell keeps the class it carried
        (sha["img1.jpg"], 10.0, 10.0, 5.0, 5.0, True, None),
    }
    sets = AnnotationSet.objects.filter(field__smear__case=case)
    assert set(sets.values_list("kind", "status", "source_name")) == {
        (AnnotationKind.IMPORTED, AnnotationStatus.LOCKED, "lab-set")
    }
    assert Field.objects.filter(smear__case=case, status=FieldStatus.CONSENSUS).count() == 3
    assert AuditEvent.objects.filter(action="annotation_set.import").count() == 3


def test_round_trip_import_export_import_gives_the_same_boxes_and_classes(tmp_path: Path) -> None:
    first_case: Any = CaseFactory()
    run_import(DirectoryDataset(coco_folder(tmp_path / "source")), first_case)
    original = boxes_by_image(first_case)
    exported = io.BytesIO()
    coco_export_write(export_plan(ExportRequest(cases=(first_case.code,))), exported)
    # Make room for the same images again (the import skips images it already stores).
    Field.objects.filter(smear__case=first_case).delete()
    second_case: Any = CaseFactory()
    report = run_import(ZipDataset(io.BytesIO(exported.getvalue()), archive_limits()), second_case)
    assert report.duplicates == []
    # Image bytes are identical (no metadata to strip), so the content keys match too.
    assert boxes_by_image(second_case) == original


def test_images_already_stored_or_repeated_are_reported_and_skipped(tmp_path: Path) -> None:
    root = coco_folder(tmp_path)
    run_import(DirectoryDataset(root), CaseFactory())
    again = run_import(DirectoryDataset(root), CaseFactory())
    assert again.fields == 0
    assert sorted(d.file for d in again.duplicates) == [f"images/train/img{i}.jpg" for i in range(3)]
    assert all(d.reason.startswith("already stored as field") for d in again.duplicates)
    (root / "images" / "train" / "copy.jpg").write_bytes(image_bytes(64, 48, seed=999))
    (root / "images" / "train" / "copy2.jpg").write_bytes(image_bytes(64, 48, seed=999))
    document = (root / "annotations" / "instances_train.json").read_text()
    extra = '{"id": 8, "file_name": "copy.jpg", "width": 64, "height": 48}, {"id": 9, "file_name": "copy2.jpg"}, '
    (root / "annotations" / "instances_train.json").write_text(document.replace('"images": [', '"images": [' + extra))
    third = run_import(DirectoryDataset(root), CaseFactory())
    assert third.fields == 1
    assert [(d.file, d.reason) for d in third.duplicates if "same image" in d.reason] == [
        ("images/train/copy2.jpg", "the same image as images/train/copy.jpg")
    ]


def test_coco_problems_are_all_listed_and_nothing_is_written(tmp_path: Path) -> None:
    images = [
        {"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
        {"id": 2, "file_name": "missing.jpg", "width": 64, "height": 48},
        {"id": 3, "file_name": "../../etc/passwd", "width": 64, "height": 48},
    ]
    annotations = [
        {"id": 1, "image_id": 1, "category_id": 99, "bbox": [1, 1, 5, 5]},
        {"id": 2, "image_id": 1, "category_id": 12, "bbox": [1, 1, 0, 5]},
        {"id": 3, "image_id": 1, "category_id": 12, "bbox": [60, 1, 10, 5]},
        {"id": 4, "image_id": 7, "category_id": 12, "bbox": [1, 1, 5, 5]},
    ]
    root = write_coco(tmp_path, images, annotations, {"a.jpg": image_bytes(64, 48, seed=5)}, categories=CATEGORIES)
    with pytest.raises(ValidationFailed) as caught:
        run_import(DirectoryDataset(root), CaseFactory())
    reasons = [f"{e.field}: {e.reason}" for e in caught.value.errors]
    expected = [
        "image file not found in the dataset: in 1 image (missing.jpg); images[1]: file_name 'missing.jpg': no such",
        "image named by an absolute path, a URL or '..'",
        "images[2]: file_name '../../etc/passwd': the name contains '..'",
        "category_id 99 is not in categories: 1 box in 1 image (a.jpg); annotations[0]: category_id 99 is not in",
        "image_id names no image of this file: 1 box; annotations[3]: image_id names no image of this file",
        "a.jpg: annotations[1] (id 2, lymphoblast): bbox [1, 1, 0, 5] has no area",
        "a.jpg: annotations[2] (id 3, lymphoblast) {'x': 60.0, 'y': 1.0, 'width': 10.0, 'height': 5.0}: x + width = 70",
    ]
    assert {error.field for error in caught.value.errors} == {"annotations/instances_train.json"}
    for fragment in expected:
        assert any(fragment in reason for reason in reasons), (fragment, reasons)
    assert Field.objects.count() == 0


@pytest.mark.parametrize("failing", ["field_files_save", "_cells_insert"])
def test_a_failure_while_writing_rolls_back_and_deletes_stored_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    """A thread storing the second image fails, or the database fails while threads store images: either way nothing
    is left, neither rows nor files (threads still running are waited for before the files are removed)."""
    calls = []
    original = getattr(writer, failing)

    def fail_on_second(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 2 or failing == "_cells_insert":
            raise RuntimeError("disk full")
        original(*args, **kwargs)

    monkeypatch.setattr(writer, failing, fail_on_second)
    with pytest.raises(RuntimeError, match="disk full"):
        run_import(DirectoryDataset(coco_folder(tmp_path / "data")), CaseFactory())
    assert Field.objects.count() == 0
    assert AnnotationSet.objects.count() == 0
    assert [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()] == []


def test_import_as_an_annotator_makes_their_submitted_set(tmp_path: Path) -> None:
    annotator = UserFactory(roles=[Role.ANNOTATOR])
    case: Any = CaseFactory()
    run_import(
        DirectoryDataset(coco_folder(tmp_path)), case, annotator=import_annotator(f"annotator:{annotator.username}")
    )
    sets = AnnotationSet.objects.filter(field__smear__case=case)
    assert set(sets.values_list("kind", "annotator", "status")) == {
        (AnnotationKind.ANNOTATOR, annotator.pk, AnnotationStatus.SUBMITTED)
    }
    assert set(Field.objects.filter(smear__case=case).values_list("status", flat=True)) == {FieldStatus.IN_ANNOTATION}
    for bad in ("annotator:nobody", f"annotator:{UserFactory(roles=[Role.RESEARCHER]).username}", "reviewer"):
        with pytest.raises(ValidationFailed, match="annotator:USERNAME"):
            import_annotator(bad)


def test_ids_choose_images_and_unknown_ids_are_problems(tmp_path: Path) -> None:
    root = coco_folder(tmp_path)
    case: Any = CaseFactory()
    report = run_import(DirectoryDataset(root), case, ids=frozenset({"img0", "3"}), smear_code="S9")
    assert report.fields == 2
    assert sorted(Field.objects.filter(smear__case=case, smear__code="S9").values_list("original_name", flat=True)) == [
        "img0.jpg",
        "img2.jpg",
    ]
    with pytest.raises(ValidationFailed, match="1 problem"):
        run_import(DirectoryDataset(root), CaseFactory(), ids=frozenset({"img9"}))


def test_an_unsafe_zip_is_refused_before_any_image_is_read(tmp_path: Path) -> None:
    import zipfile

    archive = io.BytesIO(zip_folder(coco_folder(tmp_path)))
    with zipfile.ZipFile(archive, "a") as writable:
        writable.writestr("../../outside.jpg", b"x")
    from annotations.interchange.archive import UnsafeArchive

    with pytest.raises(UnsafeArchive) as caught:
        ZipDataset(archive, archive_limits())
    assert [p.file for p in caught.value.problems] == ["../../outside.jpg"]
