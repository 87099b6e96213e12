"""The same safety for every reader: a hostile zip (zip-slip, links, bombs) is refused before any reader runs,
whatever the format, and nothing is written."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from annotations.interchange.formats import EXPORT_FORMATS, IMPORT_FORMATS
from annotations.models import Field, ImportFormat
from tests.factories import CaseFactory

pytestmark = pytest.mark.django_db


def _hostile(path: Path, kind: str) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        if kind == "slip":
            archive.writestr("../../outside.txt", "x")
        elif kind == "link":
            link = zipfile.ZipInfo("images/train/a.jpg")
            link.external_attr = 0o120777 << 16
            archive.writestr(link, "/etc/passwd")
        else:
            archive.writestr("labels/train/a.txt", b"0" * (80 * 2**20))
    return path


def test_every_format_has_a_reader_and_every_reader_but_voc_a_writer() -> None:
    assert set(IMPORT_FORMATS) == set(ImportFormat.values)
    assert set(EXPORT_FORMATS) == set(ImportFormat.values) - {ImportFormat.VOC}


@pytest.mark.parametrize("import_format", IMPORT_FORMATS)
@pytest.mark.parametrize("kind", ["slip", "link", "bomb"])
def test_hostile_zips_are_refused_for_every_format(tmp_path: Path, import_format: str, kind: str) -> None:
    case = CaseFactory()
    archive = _hostile(tmp_path / "x.zip", kind)
    with pytest.raises(CommandError, match="The archive is refused"):
        call_command("import_dataset", str(archive), "--format", import_format, "--case", case.code)
    assert Field.objects.count() == 0
    assert not (tmp_path.parent / "outside.txt").exists()
