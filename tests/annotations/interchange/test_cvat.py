"""CVAT for images 1.1: import (boxes, subsets as splits, attributes), export read back, hostile XML refused."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from defusedxml.ElementTree import fromstring

from annotations.interchange.archive import DirectoryDataset, ZipDataset
from annotations.interchange.dataset_import import DatasetRefused, ImportOptions, dataset_import
from annotations.interchange.export_selection import ExportRequest
from annotations.interchange.jobs import archive_limits, export_to_file
from annotations.interchange.label_map import label_map_parse
from annotations.models import Cell, Field, Patient
from tests.annotations.interchange.builders import zip_entries
from tests.factories import CaseFactory, image_bytes

pytestmark = pytest.mark.django_db

MAP = label_map_parse({"name": "cvat-lab", "labels": {"blast": "myeloblast", "junk": "uncountable", "rbc": "ignore"}})


def write_cvat(root: Path, images: str, *, prolog: str = "") -> Path:
    (root / "images" / "sub").mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(("a.jpg", "sub/b.jpg")):
        (root / "images" / name).write_bytes(image_bytes(64, 48, seed=1000 + i))
    (root / "annotations.xml").write_text(
        f"{prolog}<annotations><version>1.1</version><meta><task><name>t</name></task></meta>{images}</annotations>"
    )
    return root


IMAGES = (
    '<image id="0" name="a.jpg" width="64" height="48" subset="Train">'
    '<box label="blast" occluded="0" xtl="1.5" ytl="2" xbr="21.5" ybr="12.25" z_order="0"/>'
    '<box label="junk" xtl="0" ytl="0" xbr="64" ybr="48"><attribute name="cell_class">12</attribute></box>'
    '<box label="rbc" xtl="3" ytl="3" xbr="5" ybr="5"/>'
    '<polygon label="blast" points="1,1;5,1;5,5"/>'
    "</image>"
    '<image id="1" name="sub/b.jpg" width="64" height="48" subset="Validation"/>'
)


def _import(root: Path, **options: Any) -> Any:
    if "case" not in options:
        options["case"] = CaseFactory()
    return dataset_import(DirectoryDataset(root), ImportOptions(format="cvat", label_map=MAP, **options), actor=None)


def test_cvat_boxes_subsets_and_attributes_import(tmp_path: Path) -> None:
    report = _import(write_cvat(tmp_path, IMAGES), case=None, split_from_dataset=True, patient_per_image=True)
    assert (report.fields, report.cells, report.ignored_boxes) == (2, 2, {"rbc": 1})
    assert set(Cell.objects.values_list("x", "y", "width", "height", "countable", "cell_class_id")) == {
        (1.5, 2.0, 20.0, 10.25, True, 0),
        (0.0, 0.0, 64.0, 48.0, False, 12),
    }
    assert [w.kind for w in report.warnings] == ["shape other than a box; skipped"]
    assert dict(Patient.objects.values_list("code", "split")) == {"a": "train", "b": "val"}


@pytest.mark.parametrize(
    ("images", "kind"),
    [
        ('<image id="0" name="a.jpg"><box label="blast" xtl="1" ytl="1" xbr="9" ybr="9" rotation="30"/></image>',
         "rotated box (cells are axis-aligned boxes)"),
        ('<image id="0" name="a.jpg"><box label="neutro" xtl="1" ytl="1" xbr="9" ybr="9"/></image>',
         "label 'neutro' is not in the label map"),
        ('<image id="0" name="gone.jpg"><box label="blast" xtl="1" ytl="1" xbr="9" ybr="9"/></image>',
         "image file not found in the dataset"),
        ('<image id="0" name="../../etc/passwd"/>',
         "image named by an absolute path, a URL or '..' (give the image folder, --images, to find it by name)"),
        ('<image id="0" name="a.jpg"><box label="blast" xtl="1" ytl="1" xbr="90" ybr="9"/></image>',
         "box outside its image by 1 px or more"),
    ],
)  # fmt: skip
def test_problems_are_listed_by_file_and_nothing_is_written(tmp_path: Path, images: str, kind: str) -> None:
    with pytest.raises(DatasetRefused) as caught:
        _import(write_cvat(tmp_path, images))
    assert [(p.file, p.kind) for _, p in caught.value.report_rows] == [("annotations.xml", kind)]
    assert Field.objects.count() == 0


@pytest.mark.parametrize(
    "prolog",
    [
        '<!DOCTYPE a [<!ENTITY x "xxxxxxxx"><!ENTITY y "&x;&x;&x;&x;&x;">]>',  # entity expansion
        '<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>',  # external entity
    ],
)
def test_xml_with_a_dtd_or_entities_is_refused(tmp_path: Path, prolog: str) -> None:
    with pytest.raises(DatasetRefused) as caught:
        _import(write_cvat(tmp_path, IMAGES, prolog=prolog))
    assert "DTD or entities" in caught.value.errors[0].reason
    assert Field.objects.count() == 0


def test_video_tracks_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetRefused, match="problem"):
        _import(write_cvat(tmp_path, '<track id="0" label="blast"/>'))


def test_the_export_is_cvat_xml_whose_boxes_read_back_to_the_pixel(tmp_path: Path) -> None:
    case = CaseFactory()
    _import(write_cvat(tmp_path / "in", IMAGES), case=case, source_name="cvat-lab")
    out = io.BytesIO()
    export_to_file(ExportRequest(cases=(case.code,), format="cvat"), out)
    entries = zip_entries(out.getvalue())
    document = fromstring(entries["annotations.xml"], forbid_dtd=True)
    assert len(document.findall("meta/task/labels/label")) == 23
    boxes = {
        (
            box.get("label"),
            float(box.get("xtl")),
            float(box.get("ytl")),
            float(box.get("xbr")) - float(box.get("xtl")),
            float(box.get("ybr")) - float(box.get("ytl")),
            box.find("attribute[@name='cell_class']").text,
        )
        for box in document.iter("box")
    }
    assert boxes == {("myeloblast", 1.5, 2.0, 20.0, 10.25, "0"), ("uncountable", 0.0, 0.0, 64.0, 48.0, "12")}
    for image in document.iter("image"):
        assert f"images/{image.get('name')}" in entries
    Field.objects.all().delete()
    again = CaseFactory()
    dataset_import(
        ZipDataset(io.BytesIO(out.getvalue()), archive_limits()),
        ImportOptions(format="cvat", case=again),
        actor=None,
    )
    assert set(Cell.objects.values_list("x", "y", "width", "height", "countable", "cell_class_id")) == {
        (1.5, 2.0, 20.0, 10.25, True, 0),
        (0.0, 0.0, 64.0, 48.0, False, 12),
    }
