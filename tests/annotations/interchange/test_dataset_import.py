"""What the import does whatever the format: problems grouped so a person can act on them, sub-pixel clamping,
images found by file name (Label Studio's own COCO export), the CSV report, the audit record, bulk writes."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.db import IntegrityError
from django.utils import timezone

from aicell.roles import Role
from annotations.interchange import dataset_write
from annotations.interchange.archive import DirectoryDataset
from annotations.interchange.dataset_import import DatasetRefused, ImportOptions, dataset_import
from annotations.interchange.dataset_write import PlannedCell, cells_content_hash
from annotations.interchange.image_refs import reference_file_name
from annotations.interchange.jobs import image_folder_open
from annotations.interchange.label_map import label_map_parse
from annotations.models import AuditEvent, Cell, Field
from tests.annotations.interchange.builders import write_coco
from tests.factories import AnnotationSetFactory, CaseFactory, UserFactory, image_bytes

pytestmark = pytest.mark.django_db

CATEGORIES = [{"id": 1, "name": "lymphoblast"}, {"id": 2, "name": "neutrophil"}]
LABEL_MAP = {"name": "LS", "labels": {"lymphoblast": "lymphoblast", "neutrophil": "neutrophilic segmented"}}


def _coco(root: Path, boxes_per_image: list[list[tuple[int, list[float]]]]) -> Path:
    """A COCO folder of 64x48 images img<i>.jpg, each with its (category id, bbox) boxes."""
    files = {f"img{i}.jpg": image_bytes(64, 48, seed=300 + i) for i in range(len(boxes_per_image))}
    images = [{"id": i + 1, "file_name": name, "width": 64, "height": 48} for i, name in enumerate(files)]
    annotations = [
        {"id": len(images) * 100 + i * 10 + k, "image_id": i + 1, "category_id": category, "bbox": bbox}
        for i, boxes in enumerate(boxes_per_image)
        for k, (category, bbox) in enumerate(boxes)
    ]
    return write_coco(root, images, annotations, files, categories=CATEGORIES)


def _import(root: Path, **options: Any) -> Any:
    return dataset_import(
        DirectoryDataset(root), ImportOptions(format="coco", case=CaseFactory(), **options), actor=None
    )


def _refusal(root: Path, **options: Any) -> DatasetRefused:
    with pytest.raises(DatasetRefused) as caught:
        _import(root, **options)
    assert Field.objects.count() == 0
    return caught.value


# --- problems a person can act on ----------------------------------------------------------------------------------


def test_one_unknown_label_in_many_images_is_one_line_with_counts_naming_the_first_images(tmp_path: Path) -> None:
    root = _coco(tmp_path, [[(1, [1, 1, 9, 9]), (2, [20, 1, 9, 9]), (2, [30, 1, 9, 9])] for _ in range(7)])
    refusal = _refusal(root)  # no label map: 'neutrophil' is no taxonomy name
    [error] = refusal.errors
    assert error.field == "annotations/instances_train.json"
    assert error.reason.startswith(
        "label 'neutrophil' is not in the label map: 14 boxes in 7 images "
        "(img0.jpg, img1.jpg, img2.jpg, img3.jpg, img4.jpg, ...); "
        "first: img0.jpg: label 'neutrophil' (2 box(es)) is not in the label map"
    )
    assert refusal.message == "The dataset has 7 problem(s) of 1 kind(s); nothing was imported."
    [group] = refusal.details["problem_groups"]
    assert (group["problems"], group["boxes"], group["images"]) == (7, 14, 7)
    assert [row[1].image for row in refusal.report_rows] == [f"img{i}.jpg" for i in range(7)]


def test_boxes_of_an_image_that_cannot_be_found_are_counted_under_it_not_listed_again(tmp_path: Path) -> None:
    root = _coco(tmp_path, [[(1, [1, 1, 5, 5])] * 3, [(1, [1, 1, 5, 5])] * 2])
    document_path = root / "annotations" / "instances_train.json"
    document = json.loads(document_path.read_text())
    document["images"][1]["file_name"] = "/data/upload/1/gone.jpg"
    document["annotations"].append({"id": 999, "image_id": 42, "category_id": 1, "bbox": [1, 1, 2, 2]})
    document_path.write_text(json.dumps(document))
    refusal = _refusal(root)
    reasons = [error.reason for error in refusal.errors]
    assert len(reasons) == 2, reasons  # the lost image (2 boxes counted) and the box naming no image at all
    assert reasons[0].startswith("image named by an absolute path, a URL or '..' (give the image folder, --images")
    assert "2 boxes in 1 image (gone.jpg)" in reasons[0]
    assert reasons[1].startswith("image_id names no image of this file: 1 box")
    assert sum(row[1].boxes for row in refusal.report_rows) == 3


# --- safe forgiveness --------------------------------------------------------------------------------------------


def test_a_box_a_fraction_of_a_pixel_past_the_edge_is_clamped_and_reported(tmp_path: Path) -> None:
    # 40 + 24.004 = 64.004 > 64, as other tools' rounding writes it; -0.3 starts left of the image.
    root = _coco(tmp_path, [[(1, [40.0, 2.0, 24.004, 10.0]), (1, [-0.3, 30.0, 10.0, 18.0]), (1, [5, 5, 5, 5])]])
    report = _import(root)
    assert (report.cells, report.clamped_boxes) == (3, 2)
    stored = set(Cell.objects.values_list("x", "y", "width", "height"))
    assert stored == {(40.0, 2.0, 24.0, 10.0), (0.0, 30.0, 9.7, 18.0), (5.0, 5.0, 5.0, 5.0)}
    assert all(x + w <= 64 and y + h <= 48 for x, y, w, h in stored)
    summary = report.to_dict()["summary"]
    assert summary == [
        "boxes clamped to the image edge (overshoot under 1 px): 2 boxes in 1 image (img0.jpg); "
        "img0.jpg: 2 box(es) overshooting the image by up to 0.3 px clamped to it"
    ]
    assert report.notes() == [("clamped", report.clamped[0])]


def test_a_box_a_pixel_or_more_past_the_edge_is_still_refused(tmp_path: Path) -> None:
    root = _coco(tmp_path, [[(1, [40.0, 2.0, 26.0, 10.0]), (1, [5, 5, 5, 5])]])
    [error] = _refusal(root).errors
    assert error.reason.startswith("box outside its image by 1 px or more: 1 box in 1 image (img0.jpg)")
    assert "x + width = 66 exceeds the image width 64" in error.reason


def _label_studio_export(root: Path, images_dir: Path, count: int) -> Path:
    """A COCO export as Label Studio writes it for uploaded images: result.json at the top, 0-based ids, file names
    that are Label Studio's own upload URLs (/data/upload/<project>/<8 hex>-<name>), boxes computed from
    percentages (so a box may end a few thousandths of a pixel past the edge), no images in the export."""
    images_dir.mkdir(parents=True)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for index in range(count):
        name = f"field_{index:06d}.jpg"
        (images_dir / name).write_bytes(image_bytes(320, 240, seed=500 + index))
        images.append({"width": 320, "height": 240, "id": index, "file_name": f"/data/upload/1/8c1f0a2b-{name}"})
        for x, y, w, h, label in [(10.0, 10.0, 12.5, 20.0, 0), (87.5, 50.0, 12.5013, 25.0, 1)]:
            bbox = [x / 100 * 320, y / 100 * 240, w / 100 * 320, h / 100 * 240]
            annotations.append(
                {"id": len(annotations), "image_id": index, "category_id": label, "segmentation": [], "bbox": bbox,
                 "ignore": 0, "iscrowd": 0, "area": bbox[2] * bbox[3]}
            )  # fmt: skip
    document = {
        "images": images,
        "categories": [{"id": 0, "name": "lymphoblast"}, {"id": 1, "name": "neutrophil"}],
        "annotations": annotations,
        "info": {"year": 2026, "version": "1.0", "description": "", "contributor": "Label Studio", "url": ""},
    }
    root.mkdir(parents=True)
    (root / "result.json").write_text(json.dumps(document, indent=2))
    return root / "result.json"


def _command(*args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        call_command("import_dataset", *args)
    return out.getvalue()


def test_label_studios_own_coco_export_imports_with_images_and_is_refused_in_one_line_without(tmp_path: Path) -> None:
    result = _label_studio_export(tmp_path / "export", tmp_path / "media" / "upload" / "1", count=4)
    label_map = tmp_path / "map.json"
    label_map.write_text(json.dumps(LABEL_MAP))
    case: Any = CaseFactory()
    common = ["--format", "coco", str(result), "--case", case.code, "--label-map", str(label_map)]
    with pytest.raises(CommandError) as caught:
        _command(*common)
    lines = str(caught.value).splitlines()
    assert lines[0] == "The dataset has 4 problem(s) of 1 kind(s); nothing was imported."
    assert len(lines) == 2, lines  # one grouped line, not one per image plus one per box
    assert "8 boxes in 4 images (8c1f0a2b-field_000000.jpg" in lines[1]
    report_path = tmp_path / "report.csv"
    output = _command(*common, "--images", str(tmp_path / "media"), "--report", str(report_path))
    report = json.loads(output)
    assert (report["fields"], report["cells"], report["images_found_by_name"]) == (4, 8, 4)
    assert report["clamped_boxes"] == 4  # 87.5% + 12.5013% of 320 px ends 0.004 px past the edge
    assert sorted(Field.objects.filter(smear__case=case).values_list("original_name", flat=True)) == [
        f"field_{index:06d}.jpg" for index in range(4)
    ]
    rows = list(csv.DictReader(report_path.open()))
    assert {row["outcome"] for row in rows} == {"clamped"}
    assert sorted(row["image"] for row in rows) == [f"field_{index:06d}.jpg" for index in range(4)]


def test_images_are_found_by_file_name_without_label_studios_upload_prefix_and_never_guessed(tmp_path: Path) -> None:
    result = _label_studio_export(tmp_path / "export", tmp_path / "plain", count=2)
    files = DirectoryDataset(result.parent)
    options = {"label_map": label_map_parse(LABEL_MAP), "coco_json": ["result.json"]}
    report = dataset_import(
        files,
        ImportOptions(format="coco", case=CaseFactory(), images=image_folder_open(tmp_path / "plain"), **options),
        actor=None,
    )
    assert report.images_found_by_name == 2
    (tmp_path / "plain" / "again").mkdir()
    (tmp_path / "plain" / "again" / "field_000000.jpg").write_bytes(b"another file of the same name")
    with pytest.raises(DatasetRefused) as caught:
        dataset_import(
            files,
            ImportOptions(format="coco", case=CaseFactory(), images=image_folder_open(tmp_path / "plain"), **options),
            actor=None,
        )
    [error] = caught.value.errors
    assert error.reason.startswith("image file name found more than once in the image folder: 2 boxes in 1 image")


@pytest.mark.parametrize(
    ("reference", "name"),
    [
        ("/data/upload/3/0a1b2c3d-cell%20a.jpg", "0a1b2c3d-cell%20a.jpg"),
        ("http://ls.local:8080/data/upload/3/x%20y.jpg?token=1", "x y.jpg"),
        ("/data/local-files/?d=smears/day1/f1.png", "f1.png"),
        ("C:\\Users\\lab\\f2.tif", "f2.tif"),
        ("images/f3.jpg", "f3.jpg"),
    ],
)
def test_the_file_name_of_a_reference(reference: str, name: str) -> None:
    assert reference_file_name(reference) == name


# --- the report, the audit, the bulk write -----------------------------------------------------------------------


def test_the_command_writes_every_problem_to_the_csv_report(tmp_path: Path) -> None:
    root = _coco(tmp_path / "data", [[(2, [1, 1, 9, 9]), (1, [60, 1, 9, 9])], [(2, [1, 1, 9, 9])]])
    report_path = tmp_path / "problems.csv"
    with pytest.raises(CommandError):
        _command("--format", "coco", str(root), "--case", CaseFactory().code, "--report", str(report_path))
    rows = list(csv.DictReader(report_path.open()))
    assert [(row["outcome"], row["kind"], row["image"], row["boxes"]) for row in rows] == [
        ("refused", "label 'neutrophil' is not in the label map", "img0.jpg", "1"),
        ("refused", "box outside its image by 1 px or more", "img0.jpg", "1"),
        ("refused", "label 'neutrophil' is not in the label map", "img1.jpg", "1"),
    ]
    assert all(row["file"] == "annotations/instances_train.json" and row["reason"] for row in rows)


def test_the_audit_records_who_imported_what_and_when_with_counts_and_a_checkable_hash(tmp_path: Path) -> None:
    admin = UserFactory(roles=[Role.ADMIN])
    root = _coco(tmp_path, [[(1, [1, 1, 9, 9]), (1, [20, 1, 9.5, 9])], [(1, [2, 2, 3, 3])]])
    before = timezone.now()
    report = dataset_import(
        DirectoryDataset(root), ImportOptions(format="coco", case=CaseFactory(), source_name="lab"), actor=admin
    )
    events = AuditEvent.objects.filter(action="annotation_set.import").order_by("id")
    assert [event.field_id for event in events] == report.field_ids
    for event in events:
        assert (event.actor, event.reason) == (admin, "imported from lab: annotations/instances_train.json")
        assert event.at >= before
        cells = Cell.objects.filter(annotation_set_id=event.annotation_set_id).order_by("id")
        stored = cells.values_list("x", "y", "width", "height", "countable", "cell_class_id")
        assert event.after is not None
        assert (event.after["cells"], event.after["countable"], event.after["source_name"]) == (
            len(cells),
            len(cells),
            "lab",
        )
        assert event.after["content_sha256"] == cells_content_hash([PlannedCell(*row) for row in stored])
        assert set(cells.values_list("created_by", flat=True)) == {admin.pk}
    assert AuditEvent.objects.filter(action="field.upload", actor=admin).count() == 2


def test_a_file_already_at_an_images_storage_name_gets_another_name_written_back(tmp_path: Path) -> None:
    root = _coco(tmp_path, [[(1, [1, 1, 9, 9])], [(1, [1, 1, 9, 9])]])
    data = (root / "images" / "train" / "img1.jpg").read_bytes()
    orphan = Field(sha256=hashlib.sha256(data).hexdigest(), format="JPEG")
    expected = Field._meta.get_field("image").generate_filename(orphan, "original")
    default_storage.save(expected, io.BytesIO(b"an orphan left by an earlier failure"))
    _import(root)
    field = Field.objects.get(original_name="img1.jpg")
    assert field.image.name != expected
    with field.image.open("rb") as handle:
        assert handle.read() == data
    with default_storage.open(expected, "rb") as handle:
        assert handle.read() == b"an orphan left by an earlier failure"


def test_the_bulk_cell_insert_is_still_checked_by_the_database() -> None:
    annotation_set = AnnotationSetFactory(field__width=64, field__height=48)
    inside, outside = PlannedCell(1.0, 1.0, 5.0, 5.0, True, None), PlannedCell(60.0, 1.0, 10.0, 5.0, True, 3)
    with pytest.raises(IntegrityError, match="cell_box_inside_field"):
        dataset_write._cells_insert([(annotation_set.pk, [inside] * 50 + [outside])], None, timezone.now())
