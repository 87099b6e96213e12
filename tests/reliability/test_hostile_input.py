"""Hostile input: every attack is answered 4xx with a field and a reason, and nothing is stored.

Uploads (wrong types, truncated files, decompression bombs, huge dimensions, polyglots, SVG), dataset imports
(zip-slip, links, zip bombs, malformed or hostile JSON and XML), request bodies (huge, deeply nested, NaN), text
fields (markup in codes refused; free text stored verbatim and only ever served as JSON, and rendered as text by
the UI: checked in Chromium), box coordinates (NaN, infinities, negative, outside the image, zero size, strings).
"""

from __future__ import annotations

import io
import json
import stat
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from aicell.models import JobStatus
from aicell.roles import Role
from annotations.models import AnnotationSet, AuditEvent, Case, Cell, Field, ImportJob, Patient, RuleSet, Smear
from annotations.tasks import import_dataset
from annotations.taxonomy import NUM_CLASSES
from tests.annotations.interchange.builders import voc_xml
from tests.conftest import token_client
from tests.factories import (
    AnnotationSetFactory,
    CaseFactory,
    CellFactory,
    FieldFactory,
    SmearFactory,
    UserFactory,
    image_bytes,
    reviewed_field,
)
from tests.reliability.figures import record_figure

# Short enough for every text column (64 characters); each sets window.__xss if the browser ever runs it.
XSS = "<img src=x onerror=window.__xss=1><script>__xss=2</script>"


def media_files() -> list[Path]:
    return [path for path in Path(settings.MEDIA_ROOT).rglob("*") if path.is_file()]


def assert_refused(response: Any, statuses: tuple[int, ...] = (400,), what: str = "") -> list[dict[str, str]]:
    """4xx in the shared error shape, with at least one {field, reason} naming what was wrong."""
    assert response.status_code in statuses, (what, response.status_code, getattr(response, "content", b"")[:500])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert body["status"] == response.status_code, body
    assert body["code"], body
    assert body["detail"], body
    assert body["errors"], body
    for error in body["errors"]:
        assert isinstance(error["field"], str), body
        assert isinstance(error["reason"], str), body
        assert error["field"], body
        assert error["reason"], body
    return list(body["errors"])


# --- files made to order ------------------------------------------------------------------------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int, *, extra_chunks: bytes = b"") -> bytes:
    """A PNG whose header declares `width` x `height` pixels, with a few bytes of pixel data (a bomb's shape)."""
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    pixels = png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    return b"\x89PNG\r\n\x1a\n" + header + extra_chunks + pixels + png_chunk(b"IEND", b"")


def jpeg_declaring(width: int, height: int) -> bytes:
    """A real small JPEG whose frame header is rewritten to claim `width` x `height` pixels."""
    data = bytearray(image_bytes(64, 48))
    frame = data.index(b"\xff\xc0")
    data[frame + 5 : frame + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def pillow_image(image_format: str, **save: Any) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 10, 10)).save(buffer, format=image_format, **save)
    return buffer.getvalue()


def zip_of(entries: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def zip_with_info(info: zipfile.ZipInfo, data: bytes = b"x") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("Annotations/a.xml", "<annotation/>")
        archive.writestr(info, data)
    return buffer.getvalue()


def entry(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = mode << 16
    return info


def marked_encrypted(archive: bytes) -> bytes:
    """The archive with every entry's "encrypted" flag set (zipfile cannot write encrypted entries)."""
    data = bytearray(archive)
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (found := data.find(signature, start)) >= 0:
            data[found + flags_at] |= 0x1
            start = found + 4
    return bytes(data)


SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)" width="64" height="48">'
    b"<script>alert(document.cookie)</script><rect width='64' height='48'/></svg>"
)
HTML = b"<!doctype html><html><body><script>fetch('/api/v1/auth/session')</script></body></html>"
JPEG = image_bytes(64, 48)
PNG = image_bytes(64, 48, image_format="PNG")

HOSTILE_UPLOADS: dict[str, tuple[str, bytes]] = {
    "empty file": ("empty.jpg", b""),
    "plain text named .jpg": ("notes.jpg", b"patient: Jane Doe, born 2015-03-01\n"),
    "HTML named .jpg": ("page.jpg", HTML),
    "SVG with script": ("cell.svg", SVG),
    "SVG named .png": ("cell.png", SVG),
    "PDF": ("report.jpg", b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF"),
    "ZIP archive named .jpg": ("archive.jpg", zip_of({"a.txt": b"hello"})),
    "GIF": ("anim.gif", pillow_image("GIF")),
    "BMP": ("field.bmp", pillow_image("BMP")),
    "PPM": ("field.jpg", pillow_image("PPM")),
    "ICO": ("favicon.ico", pillow_image("ICO")),
    "JPEG truncated in half": ("half.jpg", JPEG[: len(JPEG) // 2]),
    "JPEG header only": ("header.jpg", JPEG[:160]),
    "PNG truncated in half": ("half.png", PNG[: len(PNG) // 2]),
    "PNG signature only": ("sig.png", PNG[:8]),
    "PNG declaring 100000 x 100000 pixels (decompression bomb)": ("bomb.png", png_declaring(100_000, 100_000)),
    "PNG declaring 2^31-1 x 1 pixels": ("wide.png", png_declaring(2**31 - 1, 1)),
    "PNG declaring 0 x 0 pixels": ("none.png", png_declaring(0, 0)),
    "JPEG declaring 65500 x 65500 pixels": ("bomb.jpg", jpeg_declaring(65_500, 65_500)),
    "PNG with a 16 MiB zTXt chunk (text bomb)": (
        "text-bomb.png",
        png_declaring(64, 48, extra_chunks=png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"A" * 2**24, 9))),
    ),
    "JPEG + appended HTML (polyglot)": ("poly.jpg", JPEG + HTML),
    "JPEG + appended ZIP (polyglot)": ("poly-zip.jpg", JPEG + zip_of({"evil.html": HTML})),
    "PNG + appended ZIP (polyglot)": ("poly-zip.png", PNG + zip_of({"evil.html": HTML})),
    "HTML + JPEG": ("poly2.jpg", HTML + JPEG),
}


@pytest.mark.django_db
def test_hostile_uploads_are_refused_and_nothing_is_stored(lab_admin: Any) -> None:
    client = token_client(lab_admin)
    smear = SmearFactory()
    refused = 0
    for what, (name, data) in HOSTILE_UPLOADS.items():
        # Each alone, and each hidden in a batch after a good image: the batch is refused whole.
        for files in ([(name, data)], [("good.jpg", image_bytes(seed=refused + 1)), (name, data)]):
            uploads = [SimpleUploadedFile(file_name, content) for file_name, content in files]
            response = client.post("/api/v1/fields", {"smear": smear.pk, "files": uploads}, format="multipart")
            errors = assert_refused(response)
            assert any(error["field"].startswith(f"files[{len(files) - 1}]") for error in errors), (what, errors)
            refused += 1
        assert Field.objects.count() == 0, what
        assert media_files() == [], what
    record_figure("hostile input", "uploads refused", refused)


@pytest.mark.django_db
def test_upload_limits_refuse_without_storing(lab_admin: Any, settings: Any) -> None:
    client = token_client(lab_admin)
    smear = SmearFactory()
    settings.AICELL_MAX_UPLOAD_PIXELS = 1000  # 64 x 48 = 3072 pixels
    over_pixels = client.post(
        "/api/v1/fields", {"smear": smear.pk, "files": [SimpleUploadedFile("f.jpg", JPEG)]}, format="multipart"
    )
    assert "pixels" in assert_refused(over_pixels)[0]["reason"]
    settings.AICELL_MAX_UPLOAD_PIXELS = 50_000_000
    settings.AICELL_MAX_UPLOAD_BYTES = 100
    over_bytes = client.post(
        "/api/v1/fields", {"smear": smear.pk, "files": [SimpleUploadedFile("f.jpg", JPEG)]}, format="multipart"
    )
    assert "bytes" in assert_refused(over_bytes)[0]["reason"]
    settings.AICELL_MAX_UPLOAD_BYTES = 10**8
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 3
    files = [SimpleUploadedFile(f"f{i}.jpg", image_bytes(seed=i)) for i in range(4)]
    too_many = client.post("/api/v1/fields", {"smear": smear.pk, "files": files}, format="multipart")
    assert assert_refused(too_many)[0]["field"] == "files"
    assert Field.objects.count() == 0
    assert media_files() == []
    record_figure("hostile input", "upload limits enforced", 3)


@pytest.mark.django_db
def test_an_upload_name_never_becomes_a_path(lab_admin: Any) -> None:
    """The stored file's name is the platform's own; the sent name is kept as text only (clinical roles)."""
    client = token_client(lab_admin)
    smear = SmearFactory()
    name = f"../../../../etc/cron.d/{XSS}.jpg"
    response = client.post(
        "/api/v1/fields", {"smear": smear.pk, "files": [SimpleUploadedFile(name, JPEG)]}, format="multipart"
    )
    assert response.status_code == 201, response.json()
    field = Field.objects.get()
    media = Path(settings.MEDIA_ROOT).resolve()
    for stored in (field.image, field.thumbnail):
        path = Path(stored.path).resolve()
        name = str(stored.name)
        assert path.is_relative_to(media), name
        assert ".." not in name, name
        assert "<" not in name, name
    served = client.get(f"/api/v1/fields/{field.pk}/image")
    assert served["Content-Type"] == "image/jpeg"
    assert served["X-Content-Type-Options"] == "nosniff"


# --- request bodies -----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_hostile_json_bodies_are_refused(lab_admin: Any, settings: Any) -> None:
    client = token_client(lab_admin)
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    bodies = {
        "not JSON": b"{'code': 'P1'",
        "NaN token": b'{"code": "P1", "x": NaN}',
        "Infinity token": b'{"code": "P1", "x": Infinity}',
        "nested 100000 deep": b"[" * 100_000 + b"]" * 100_000,
        "larger than the body limit": json.dumps({"code": "P1", "note": "A" * (128 * 1024)}).encode(),
        "invalid UTF-8": b'{"code": "\xff\xfe"}',
        "a list instead of an object": b'[{"code": "P1"}]',
        "a number instead of an object": b"-8.1e179",
        "a string instead of an object": b'"P1"',
    }
    refused = 0
    for what, body in bodies.items():
        for path in ("/api/v1/patients", "/api/v1/rule-sets", "/api/v1/prelabel-jobs"):
            response = client.generic("POST", path, body, content_type="application/json")
            assert_refused(response, (400, 413), what)
            refused += 1
    assert Patient.objects.count() == 0
    assert RuleSet.objects.filter(name="P1").count() == 0
    record_figure("hostile input", "request bodies refused", refused)


@pytest.mark.django_db
def test_api_addresses_that_name_nothing_answer_json_404(lab_admin: Any) -> None:
    client = token_client(lab_admin)
    for path in ("/api/v1/cells/1.5/", "/api/v1/fields/-1e-38/image/", "/api/v1/no-such-list", "/api/v2/fields"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response["Content-Type"] == "application/json", path
        assert response.json()["code"] == "not_found", path
    # An address no endpoint has says so (the browser UI tells "not on this server" from "no such object" by it).
    for path in ("/api/v1/no-such-list", "/api/v2/fields"):
        problems = client.get(path).json()["errors"]
        assert problems == [{"field": "path", "reason": "no endpoint has this address"}], path
    assert client.get("/api/v1/cells/999999").json()["errors"] == []


# --- box coordinates ------------------------------------------------------------------------------------------------

BAD_BOXES: dict[str, dict[str, Any]] = {
    "x NaN (string)": {"x": "NaN"},
    "x nan (string)": {"x": "nan"},
    "x Infinity (string)": {"x": "Infinity"},
    "width -Infinity (string)": {"width": "-Infinity"},
    "width 1e309 (overflows to infinity)": {"width": "1e309"},
    "x negative": {"x": -1},
    "y negative": {"y": -0.5},
    "x outside the image": {"x": 700},
    "box crossing the right edge": {"x": 600, "width": 50},
    "box crossing the bottom edge": {"y": 470, "height": 20},
    "width zero": {"width": 0},
    "height zero": {"height": 0},
    "width negative": {"width": -10},
    "width 1e308": {"width": 1e308},
    "x a word": {"x": "left"},
    "x empty": {"x": ""},
    "x true": {"x": True},
    "x null": {"x": None},
    "x a list": {"x": [1, 2]},
    "x an object": {"x": {"value": 1}},
    "cell_class past the taxonomy": {"cell_class": NUM_CLASSES},
    "cell_class -1": {"cell_class": -1},
    "cell_class a name": {"cell_class": "lymphoblast"},
    "cell_class 1.5": {"cell_class": 1.5},
    "countable a word": {"countable": "maybe"},
    "source_cell of another field": {"source_cell": 10**9},
    "unknown attribute": {"annotation_set": 1},
}
GOOD_BOX = {"x": 10, "y": 20, "width": 50, "height": 40, "cell_class": 11}


@pytest.mark.django_db
def test_bad_box_coordinates_are_refused_and_change_nothing(annotator: Any, adjudicator: Any) -> None:
    client = token_client(annotator)
    own = AnnotationSetFactory(annotator=annotator, field=FieldFactory(width=640, height=480))
    cell = CellFactory(annotation_set=own)
    own.refresh_from_db()
    version = own.version
    events = AuditEvent.objects.count()
    refused = 0
    for what, change in BAD_BOXES.items():
        created = client.post(
            f"/api/v1/annotation-sets/{own.pk}/cells", {**GOOD_BOX, **change, "version": version}, format="json"
        )
        assert_refused(created)
        patched = client.patch(f"/api/v1/cells/{cell.pk}", {**change, "version": version}, format="json")
        assert_refused(patched)
        refused += 2
        if not any(isinstance(value, dict | list) or value is None for value in change.values()):
            form = client.post(
                f"/api/v1/annotation-sets/{own.pk}/cells",
                {**GOOD_BOX, **change, "version": version},
                format="multipart",
            )
            assert_refused(form)
            refused += 1
        assert (Cell.objects.count(), AnnotationSet.objects.get(pk=own.pk).version) == (1, version), what
    # Raw NaN and Infinity tokens, which strict JSON does not have.
    for token in (b"NaN", b"Infinity", b"-Infinity"):
        body = b'{"x": %s, "y": 1, "width": 5, "height": 5, "version": %d}' % (token, version)
        assert_refused(client.generic("POST", f"/api/v1/annotation-sets/{own.pk}/cells", body, "application/json"))
        refused += 1
    cell.refresh_from_db()
    assert (cell.x, cell.y, cell.width, cell.height) == (10.0, 20.0, 50.0, 40.0)
    assert AuditEvent.objects.count() == events
    refused += _bad_custom_cells_are_refused(annotator, adjudicator)
    record_figure("hostile input", "box coordinates refused", refused)


def _bad_custom_cells_are_refused(annotator: Any, adjudicator: Any) -> int:
    """An adjudicator's own box for a conflict ("custom") passes the same checks."""
    co_annotator = UserFactory(roles=[Role.ANNOTATOR])
    box = {"x": 10, "y": 20, "width": 50, "height": 40, "cell_class_id": 11}
    field = reviewed_field(annotator, co_annotator, [box], [{**box, "cell_class_id": 12}], width=640, height=480)
    conflict = field.conflicts.get()
    client = token_client(adjudicator)
    refused = 0
    for what, change in BAD_BOXES.items():
        if set(change) - {"x", "y", "width", "height", "cell_class", "countable"}:
            continue
        custom = {"x": 10, "y": 20, "width": 50, "height": 40, "cell_class": 11, **change}
        response = client.post(
            f"/api/v1/conflicts/{conflict.pk}/resolve",
            {"decision": "custom", "cell": custom, "version": conflict.version},
            format="json",
        )
        assert_refused(response, what=what)
        refused += 1
    conflict.refresh_from_db()
    assert conflict.status == "open"
    assert conflict.final_cell is None
    return refused


# --- text fields ----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_markup_in_codes_is_refused_and_free_text_is_stored_verbatim_as_json(lab_admin: Any) -> None:
    client = token_client(lab_admin)
    case = CaseFactory()
    refused = 0
    for path, body in (
        ("/api/v1/patients", {"code": XSS}),
        ("/api/v1/cases", {"code": XSS, "patient": case.patient_id}),
        ("/api/v1/smears", {"code": XSS, "case": case.pk}),
        ("/api/v1/rule-sets", {"name": XSS, "content": {"rules": []}}),
    ):
        errors = assert_refused(client.post(path, body, format="json"))
        assert errors[0]["field"] in ("code", "name"), errors
        refused += 1
    assert Patient.objects.count() == 1
    assert Case.objects.count() == 1
    # Free text is data: stored as sent, answered as JSON (never HTML), and shown by the UI as text.
    smear = client.post(
        "/api/v1/smears",
        {"code": "S-XSS", "case": case.pk, "stain": XSS, "microscope": XSS, "camera": XSS, "notes": XSS},
        format="json",
    )
    assert smear.status_code == 201, smear.json()
    read = client.get(f"/api/v1/smears/{smear.json()['id']}")
    assert read["Content-Type"] == "application/json"
    assert read["X-Content-Type-Options"] == "nosniff"
    assert read.json()["notes"] == XSS
    # An error that echoes the input is JSON too.
    echoed = client.post("/api/v1/fields", {"smear": XSS, "files": []}, format="multipart")
    assert assert_refused(echoed)[0]["field"] == "smear"
    assert echoed["Content-Type"] == "application/json"
    assert Smear.objects.filter(stain=XSS).count() == 1
    record_figure("hostile input", "markup in codes refused", refused)


# --- dataset imports ------------------------------------------------------------------------------------------------

VOC_JPEG = image_bytes(64, 48, seed=7)


def voc_zip(xml: str | bytes, image: bytes = VOC_JPEG) -> bytes:
    return zip_of({"Annotations/f1.xml": xml.encode() if isinstance(xml, str) else xml, "JPEGImages/f1.jpg": image})


def coco_zip(document: bytes | str, image: bytes = VOC_JPEG) -> bytes:
    raw = document.encode() if isinstance(document, str) else document
    return zip_of({"annotations/instances_train.json": raw, "images/train/f1.jpg": image})


def coco_document(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "images": [{"id": 1, "file_name": "f1.jpg", "width": 64, "height": 48}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 12, "bbox": [2, 2, 20, 20]}],
        "categories": [{"id": 12, "name": "lymphoblast"}],
    }
    document.update(overrides)
    return document


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i + 1} "{("&lol" + (str(i) if i else "") + ";") * 10}">' for i in range(9))
    + "]><annotation><filename>&lol9;</filename></annotation>"
)
XXE = (
    '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    "<annotation><filename>&xxe;</filename></annotation>"
)
XXE_PARAMETER = (
    '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY % remote SYSTEM "http://127.0.0.1:1/evil.dtd">%remote;]><annotation/>'
)
GOOD_VOC = voc_xml("f1.jpg", 64, 48, [("WBC", 2, 2, 30, 30)])

# Refused at once (400 before a job exists): the archive itself is unsafe.
UNSAFE_ARCHIVES: dict[str, tuple[str, bytes]] = {
    "zip-slip ../": ("voc", zip_of({"Annotations/a.xml": GOOD_VOC.encode(), "../../etc/cron.d/evil": b"x"})),
    "zip-slip nested ..": ("voc", zip_of({"Annotations/../../../evil.xml": b"x"})),
    "absolute path": ("voc", zip_of({"/etc/passwd": b"root:x:0:0"})),
    "Windows drive": ("voc", zip_of({"C:/Windows/evil.dll": b"MZ"})),
    "backslashes": ("voc", zip_of({"..\\..\\evil.xml": b"x"})),
    "symbolic link": ("voc", zip_with_info(entry("JPEGImages/f1.jpg", stat.S_IFLNK | 0o777), b"/etc/passwd")),
    "FIFO": ("voc", zip_with_info(entry("JPEGImages/pipe", stat.S_IFIFO | 0o644))),
    "character device": ("voc", zip_with_info(entry("JPEGImages/dev", stat.S_IFCHR | 0o644))),
    "encrypted entries": ("voc", marked_encrypted(zip_of({"JPEGImages/secret.jpg": b"x"}))),
    "zip bomb (ratio)": ("coco", zip_of({"annotations/instances_train.json": b"\x00" * (4 * 1024 * 1024)})),
    "not a zip": ("voc", b"this is not a zip archive at all"),
    "empty archive file": ("voc", b""),
    "truncated zip": ("voc", voc_zip(GOOD_VOC)[:-40]),
    "JPEG named .zip": ("voc", VOC_JPEG),
}

# Accepted as a job, refused by the worker with every problem listed; nothing is written.
HOSTILE_DATASETS: dict[str, tuple[str, bytes]] = {
    "XML not well-formed": ("voc", voc_zip("<annotation><size><width>64</size>")),
    "XML entity expansion (billion laughs)": ("voc", voc_zip(BILLION_LAUGHS)),
    "XML external entity (XXE)": ("voc", voc_zip(XXE)),
    "XML external parameter entity": ("voc", voc_zip(XXE_PARAMETER)),
    "XML NaN box": ("voc", voc_zip(voc_xml("f1.jpg", 64, 48, [("WBC", float("nan"), 2, 30, 30)]))),
    "XML box outside the image": ("voc", voc_zip(voc_xml("f1.jpg", 64, 48, [("WBC", 2, 2, 900, 30)]))),
    "XML image is a polyglot": ("voc", voc_zip(GOOD_VOC, image=VOC_JPEG + HTML)),
    "XML image is SVG": ("voc", voc_zip(GOOD_VOC, image=SVG)),
    "JSON malformed": ("coco", coco_zip('{"images": [')),
    "JSON nested 100000 deep": ("coco", coco_zip("[" * 100_000 + "]" * 100_000)),
    "JSON not an object": ("coco", coco_zip("[1, 2, 3]")),
    "JSON ids that are lists": (
        "coco",
        coco_zip(
            json.dumps(
                coco_document(
                    images=[{"id": [1], "file_name": "f1.jpg"}],
                    annotations=[{"id": 1, "image_id": [1], "category_id": {"a": 1}, "bbox": [1, 1, 2, 2]}],
                    categories=[{"id": [12], "name": "lymphoblast"}],
                )
            )
        ),
    ),
    "JSON NaN box": ("coco", coco_zip(json.dumps(coco_document()).replace("[2, 2, 20, 20]", "[NaN, 2, 20, 20]"))),
    "JSON box of strings": (
        "coco",
        coco_zip(json.dumps(coco_document()).replace("[2, 2, 20, 20]", '["2","2","a","b"]')),
    ),
    "JSON zip-slip file_name": (
        "coco",
        coco_zip(json.dumps(coco_document(images=[{"id": 1, "file_name": "../../../../etc/passwd"}]))),
    ),
    "JSON image is truncated": ("coco", coco_zip(json.dumps(coco_document()), image=VOC_JPEG[:200])),
}


@pytest.fixture
def import_case() -> Any:
    return CaseFactory(code="IMPORT-C1")


def post_import(client: Any, archive: bytes, import_format: str, **form: Any) -> Any:
    body = {"archive": SimpleUploadedFile("dataset.zip", archive), "format": import_format, "case": "IMPORT-C1"}
    return client.post("/api/v1/imports", {**body, **form}, format="multipart")


@pytest.mark.django_db
def test_unsafe_archives_are_refused_before_a_job_exists(lab_admin: Any, import_case: Any, settings: Any) -> None:
    client = token_client(lab_admin)
    refused = 0
    for what, (import_format, archive) in UNSAFE_ARCHIVES.items():
        response = post_import(client, archive, import_format)
        assert response.status_code == 400, what
        assert_refused(response)
        refused += 1
    settings.AICELL_IMPORT_MAX_ENTRIES = 3
    assert_refused(post_import(client, zip_of({f"Annotations/{i}.xml": b"<a/>" for i in range(4)}), "voc"))
    settings.AICELL_IMPORT_MAX_ENTRIES = 200_000
    settings.AICELL_IMPORT_MAX_EXPANDED_BYTES = 1000
    huge_json = json.dumps(coco_document(padding="x" * 5000)).encode()
    assert_refused(post_import(client, coco_zip(huge_json), "coco"))
    settings.AICELL_IMPORT_MAX_EXPANDED_BYTES = 10**10
    settings.AICELL_IMPORT_MAX_ARCHIVE_BYTES = 100
    assert_refused(post_import(client, voc_zip(GOOD_VOC), "voc"), (413,))
    settings.AICELL_IMPORT_MAX_ARCHIVE_BYTES = 10**10
    refused += 3
    # The request's other files: a label map that is no JSON (or nested too deeply), ids that are not text.
    for form in (
        {"label_map": SimpleUploadedFile("map.json", b"{not json")},
        {"label_map": SimpleUploadedFile("map.json", b"[" * 100_000 + b"]" * 100_000)},
        {"label_map": SimpleUploadedFile("map.json", b'{"labels": {"WBC": "<script>"}}')},
        {"ids": SimpleUploadedFile("ids.txt", b"\xff\xfe\x00binary")},
        {"types_csv": SimpleUploadedFile("types.csv", b"\xff\xfe\x00binary")},
        {"smear": "../../etc"},
        {"as": f"annotator:{XSS}"},
    ):
        assert_refused(post_import(client, voc_zip(GOOD_VOC), "voc", **form))
        refused += 1
    assert ImportJob.objects.count() == 0
    assert media_files() == []
    record_figure("hostile input", "import archives refused", refused)


@pytest.mark.django_db
def test_hostile_datasets_fail_their_job_with_every_problem_and_write_nothing(lab_admin: Any, import_case: Any) -> None:
    client = token_client(lab_admin)
    label_map = SimpleUploadedFile("map.json", b'{"labels": {"WBC": "lymphocyte"}}')
    refused = 0
    for what, (import_format, archive) in HOSTILE_DATASETS.items():
        form = {"label_map": label_map} if import_format == "voc" else {}
        label_map.seek(0)
        response = post_import(client, archive, import_format, **form)
        assert response.status_code == 202, (what, response.json())
        job_id = response.json()["id"]
        assert import_dataset(job_id) == JobStatus.FAILED, what
        job = client.get(f"/api/v1/imports/{job_id}").json()
        assert job["status"] == "failed", (what, job)
        assert job["error"], (what, job)
        problems = job["result"].get("errors") or []
        assert problems, (what, job)
        assert all(p["field"] and p["reason"] for p in problems), (what, job)
        assert (Field.objects.count(), AnnotationSet.objects.count()) == (0, 0), what
        # Nothing but the job's CSV report of its problems, which it names.
        report = ImportJob.objects.get(pk=job_id).report
        assert media_files() == ([Path(report.path)] if report else []), (what, media_files())
        if report:
            report.delete(save=False)
        refused += 1
    record_figure("hostile input", "hostile datasets refused", refused)


@pytest.mark.django_db
def test_declared_sizes_that_are_no_numbers_do_not_break_an_import(lab_admin: Any, import_case: Any) -> None:
    """A VOC <size> of "1e999" or "NaN" is advisory and ignored: the image's own size counts (it used to crash the
    worker with an OverflowError)."""
    client = token_client(lab_admin)
    label_map = SimpleUploadedFile("map.json", b'{"labels": {"WBC": "lymphocyte"}}')
    xml = GOOD_VOC.replace("<width>64</width>", "<width>1e999</width>").replace(
        "<height>48</height>", "<height>NaN</height>"
    )
    response = post_import(client, voc_zip(xml), "voc", label_map=label_map)
    assert response.status_code == 202, response.json()
    assert import_dataset(response.json()["id"]) == JobStatus.SUCCEEDED
    assert list(Field.objects.values_list("width", "height")) == [(64, 48)]
