"""Pascal VOC import: coordinates, hostile XML, the label map, and the real BCCD fields."""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command

from aicell.errors import ValidationFailed
from annotations.interchange.archive import DirectoryDataset
from annotations.interchange.dataset import ForeignDataset
from annotations.interchange.dataset_import import ImportOptions, dataset_import
from annotations.interchange.image_refs import ImageLookup
from annotations.interchange.label_map import label_map_parse
from annotations.interchange.voc_import import voc_read
from annotations.models import AnnotationKind, AnnotationSet, AnnotationStatus, Cell, Field, FieldStatus
from tests.annotations.interchange.builders import voc_xml, write_voc
from tests.factories import CaseFactory, image_bytes


def read_voc(root: Path) -> ForeignDataset:
    files = DirectoryDataset(root)
    return voc_read(files, ImageLookup(files))


SHARED_BCCD = settings.BASE_DIR.parent / "shared" / "data" / "bccd"
DEMO_BCCD = settings.BASE_DIR / "demo" / "bccd"
BCCD_MAP = settings.BASE_DIR / "demo" / "bccd_label_map.json"
# neutrophil -> 5 segmented, eosinophil -> 6, lymphocyte -> 12, monocyte -> 16, basophil -> 20 other (the issue).
BCCD_TYPE_CLASS = {"neutrophil": 5, "eosinophil": 6, "lymphocyte": 12, "monocyte": 16, "basophil": 20}
CELL_MAP = {"labels": {"cell": "lymphoblast", "junk": "ignore"}}


def test_voc_pixel_coordinates_are_one_based_and_inclusive(tmp_path: Path) -> None:
    write_voc(tmp_path, {"f1": (b"jpeg", 64, 48, [("cell", 1, 1, 10, 20), ("cell", 0, 5, 64, 48)])})
    dataset = read_voc(tmp_path)
    assert dataset.problems == []
    [image] = dataset.images
    assert (image.key, image.image_path, image.declared_width, image.declared_height) == (
        "f1",
        "JPEGImages/f1.jpg",
        64,
        48,
    )
    # xmin=1..xmax=10 covers pixels 0..9 -> x=0, width=10; a 0-based xmin is clamped at 0.
    assert [(b.x, b.y, b.width, b.height) for b in image.boxes] == [(0, 0, 10, 20), (0, 4, 64, 44)]


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
)
EXTERNAL_ENTITY = '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY secret SYSTEM "file:///etc/passwd">]>'


@pytest.mark.parametrize(("prolog", "name"), [(BILLION_LAUGHS, "&lol3;"), (EXTERNAL_ENTITY, "&secret;")])
def test_xml_entities_and_dtds_are_refused(tmp_path: Path, prolog: str, name: str) -> None:
    write_voc(tmp_path, {"f1": (b"jpeg", 64, 48, [])})
    (tmp_path / "Annotations" / "f1.xml").write_text(voc_xml("f1.jpg", 64, 48, [(name, 1, 1, 5, 5)], prolog=prolog))
    dataset = read_voc(tmp_path)
    assert dataset.images == []
    [problem] = dataset.problems
    assert problem.file == "Annotations/f1.xml"
    assert "refused" in problem.reason
    assert "root:" not in problem.reason


def test_missing_images_and_broken_xml_are_problems(tmp_path: Path) -> None:
    write_voc(tmp_path, {"f1": (b"jpeg", 64, 48, [])})
    (tmp_path / "Annotations" / "f2.xml").write_text(voc_xml("f2.jpg", 64, 48, []))
    (tmp_path / "Annotations" / "f3.xml").write_text("<annotation><object>")
    problems = {p.file: p.reason for p in read_voc(tmp_path).problems}
    assert "f2.jpg is not in JPEGImages/" in problems["Annotations/f2.xml"]
    assert "not well-formed" in problems["Annotations/f3.xml"]


def _import(root: Path, case: Any, **options: Any) -> Any:
    defaults: dict[str, Any] = {"format": "voc", "case": case, "label_map": label_map_parse(CELL_MAP)}
    return dataset_import(DirectoryDataset(root), ImportOptions(**(defaults | options)), actor=None)


@pytest.mark.django_db
def test_every_problem_is_listed_with_file_and_reason_and_nothing_is_written(tmp_path: Path) -> None:
    write_voc(
        tmp_path,
        {
            "good": (image_bytes(64, 48, seed=1), 64, 48, [("cell", 2, 2, 20, 20)]),
            "outside": (image_bytes(64, 48, seed=2), 64, 48, [("cell", 50, 2, 70, 20), ("junk", 1, 1, 500, 500)]),
            "unknown": (image_bytes(64, 48, seed=3), 64, 48, [("erythrocyte", 1, 1, 5, 5)] * 3),
            "notimage": (b"not an image", 64, 48, []),
            "wrongsize": (image_bytes(32, 24, seed=4), 64, 48, []),
        },
    )
    with pytest.raises(ValidationFailed) as caught:
        _import(tmp_path, CaseFactory())
    problems = {error.field: error.reason for error in caught.value.errors}
    assert set(problems) == {
        "Annotations/outside.xml",
        "Annotations/unknown.xml",
        "JPEGImages/notimage.jpg",
        "Annotations/wrongsize.xml",
    }
    assert "exceeds the image width 64" in problems["Annotations/outside.xml"]  # the ignored junk box is no problem
    assert "label 'erythrocyte' (3 box(es)) is not in the label map" in problems["Annotations/unknown.xml"]
    assert "could not be decoded" in problems["JPEGImages/notimage.jpg"]
    assert "64x48" in problems["Annotations/wrongsize.xml"]
    assert Field.objects.count() == 0
    assert not Path(settings.MEDIA_ROOT).exists() or not any(Path(settings.MEDIA_ROOT).rglob("*.*"))


def _bccd_wbc_boxes(root: Path) -> dict[str, int]:
    """White-cell boxes per field, counted straight from the XML (not through the importer)."""
    counts = {}
    for path in sorted((root / "Annotations").glob("*.xml")):
        names = [obj.findtext("name") for obj in ET.parse(path).getroot().iter("object")]
        counts[path.stem] = Counter(names)["WBC"]
    return counts


def _bccd_types(root: Path) -> dict[str, list[str]]:
    with (root / "wbc_types.csv").open() as handle:
        return {row["image"]: row["wbc_types"].split(";") for row in csv.DictReader(handle)}


@pytest.mark.slow
@pytest.mark.django_db
def test_bccd_imports_through_the_voc_path_with_every_white_cell(capsys: pytest.CaptureFixture[str]) -> None:
    if not SHARED_BCCD.exists():
        pytest.skip(f"the shared BCCD data is not at {SHARED_BCCD}")
    case = CaseFactory(code="BCCD-1")
    call_command(
        "import_dataset",
        str(SHARED_BCCD),
        "--format=voc",
        f"--case={case.code}",
        f"--label-map={BCCD_MAP}",
        f"--types-csv={SHARED_BCCD / 'wbc_types.csv'}",
    )
    expected = _bccd_wbc_boxes(SHARED_BCCD)
    assert sum(expected.values()) == 301  # the count the data's own README implies: 292 fields, mostly one WBC
    assert Field.objects.filter(smear__case=case).count() == len(expected) == 292
    assert Cell.objects.filter(annotation_set__field__smear__case=case).count() == sum(expected.values())
    sets = AnnotationSet.objects.filter(field__smear__case=case)
    assert set(sets.values_list("kind", "status", "source_name")) == {
        (AnnotationKind.IMPORTED, AnnotationStatus.LOCKED, "BCCD")
    }
    assert set(Field.objects.filter(smear__case=case).values_list("status", flat=True)) == {FieldStatus.CONSENSUS}
    # Every single-WBC field with one listed type carries that type's class; the others carry none.
    types = _bccd_types(SHARED_BCCD)
    classes = dict(
        Cell.objects.filter(annotation_set__field__smear__case=case)
        .values_list("annotation_set__field__original_name", "cell_class_id")
        .order_by()
    )
    for stem, boxes in expected.items():
        if boxes == 1:
            listed = types.get(stem, [])
            want = BCCD_TYPE_CLASS[listed[0]] if len(listed) == 1 else None
            assert classes[f"{stem}.jpg"] == want, stem
    assert '"fields": 292' in capsys.readouterr().out


@pytest.mark.django_db
def test_the_shipped_bccd_subset_imports_only_the_listed_ids(tmp_path: Path) -> None:
    train = (DEMO_BCCD / "ImageSets" / "train.txt").read_text().split()
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(train[:3]))
    case: Any = CaseFactory()
    call_command(
        "import_dataset", str(DEMO_BCCD), "--format=voc", f"--case={case.code}", f"--label-map={BCCD_MAP}",
        f"--ids={ids_file}", "--smear=BCCD-S1",
    )  # fmt: skip
    expected = _bccd_wbc_boxes(DEMO_BCCD)
    stored = Field.objects.filter(smear__case=case, smear__code="BCCD-S1")
    assert sorted(stored.values_list("original_name", flat=True)) == sorted(f"{stem}.jpg" for stem in train[:3])
    assert Cell.objects.filter(annotation_set__field__in=stored).count() == sum(expected[stem] for stem in train[:3])
    # Without --types-csv the white cells are cells of no class yet.
    assert set(Cell.objects.filter(annotation_set__field__in=stored).values_list("cell_class", flat=True)) == {None}
