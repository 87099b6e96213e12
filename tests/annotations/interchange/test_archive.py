"""Safe archive and folder reading: zip-slip names, links, device files, bombs and limits are refused."""

from __future__ import annotations

import io
import os
import stat
import warnings
import zipfile
from pathlib import Path

import pytest

from annotations.interchange.archive import (
    ArchiveLimits,
    DirectoryDataset,
    UnsafeArchive,
    ZipDataset,
    entry_name_problem,
)

LIMITS = ArchiveLimits(
    max_archive_bytes=10_000_000,
    max_entries=50,
    max_total_bytes=20_000_000,
    max_entry_bytes=8_000_000,
    max_ratio=100.0,
)


def make_zip(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> io.BytesIO:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names some tests need
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for info, data in entries:
                archive.writestr(info, data)
    buffer.seek(0)
    return buffer


def entry(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix: the mode lives in the high bits of external_attr
    info.external_attr = mode << 16
    return info


def refused(buffer: io.BytesIO, limits: ArchiveLimits = LIMITS) -> dict[str, str]:
    with pytest.raises(UnsafeArchive) as caught:
        ZipDataset(buffer, limits)
    return {problem.file: problem.reason for problem in caught.value.problems}


def test_a_sound_archive_lists_and_reads_its_regular_files() -> None:
    dataset = ZipDataset(make_zip([("a/b.txt", b"hello"), ("c.json", b"{}"), ("d/", b"")]), LIMITS)
    assert dataset.names() == ["a/b.txt", "c.json"]
    assert dataset.read("a/b.txt") == b"hello"
    with pytest.raises(FileNotFoundError):
        dataset.read("missing.txt")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../evil.txt", "'..'"),
        ("images/../../evil.txt", "'..'"),
        ("/etc/passwd", "absolute"),
        ("C:/Windows/evil.txt", "absolute"),
        ("images\\..\\evil.txt", "backslash"),
    ],
)
def test_zip_slip_names_are_refused(name: str, reason: str) -> None:
    problems = refused(make_zip([("ok.txt", b"x"), (name, b"payload")]))
    assert list(problems) == [name]
    assert reason in problems[name]
    assert entry_name_problem("images/train/00000001.jpg") is None


@pytest.mark.parametrize(
    ("mode", "what"),
    [
        (stat.S_IFLNK | 0o777, "symbolic link"),
        (stat.S_IFCHR | 0o644, "character device"),
        (stat.S_IFBLK | 0o644, "block device"),
        (stat.S_IFIFO | 0o644, "FIFO"),
        (stat.S_IFSOCK | 0o644, "socket"),
    ],
)
def test_links_and_special_files_are_refused(mode: int, what: str) -> None:
    problems = refused(
        make_zip([(entry("Annotations/a.xml", stat.S_IFREG | 0o644), b"<a/>"), (entry("x", mode), b"/etc")])
    )
    assert list(problems) == ["x"]
    assert what in problems["x"]


def test_a_zip_bomb_entry_is_refused_by_its_expansion_ratio() -> None:
    bomb = b"\0" * 5_000_000  # deflates about 1000:1
    problems = refused(make_zip([("bomb.json", bomb)]))
    assert "zip bomb" in problems["bomb.json"]


def test_small_entries_are_not_judged_by_ratio() -> None:
    dataset = ZipDataset(make_zip([("empty-list.json", b" " * 500_000)]), LIMITS)
    assert len(dataset.read("empty-list.json")) == 500_000


def test_entry_count_total_size_and_entry_size_are_bounded() -> None:
    many = make_zip([(f"f{i}.txt", b"x") for i in range(51)])
    with pytest.raises(UnsafeArchive, match="51 entries"):
        ZipDataset(many, LIMITS)
    big = os.urandom(3_000_000)  # incompressible: only the size limits apply
    small_total = ArchiveLimits(10_000_000, 50, 5_000_000, 8_000_000, 100.0)
    assert "expand to 6,000,000 bytes" in refused(make_zip([("a.bin", big), ("b.bin", big)]), small_total)["archive"]
    small_entry = ArchiveLimits(10_000_000, 50, 20_000_000, 1_000_000, 100.0)
    assert "limit is 1,000,000" in refused(make_zip([("a.bin", big)]), small_entry)["a.bin"]


def test_the_archive_file_size_is_bounded() -> None:
    with pytest.raises(UnsafeArchive, match="limit is 100 bytes"):
        ZipDataset(make_zip([("a.bin", os.urandom(1000))]), ArchiveLimits(100, 50, 10**9, 10**9, 100.0))


def test_duplicate_and_encrypted_entries_are_refused() -> None:
    data = bytearray(make_zip([("a.txt", b"1"), ("a.txt", b"2"), ("secret.txt", b"x")]).getvalue())
    central = data.rindex(b"PK\x01\x02")  # the last central directory record: secret.txt
    data[central + 8] |= 0x1  # general purpose flag bit 0: encrypted
    problems = refused(io.BytesIO(bytes(data)))
    assert "two entries" in problems["a.txt"]
    assert "encrypted" in problems["secret.txt"]


def test_not_a_zip_is_refused() -> None:
    with pytest.raises(UnsafeArchive, match="not a readable zip"):
        ZipDataset(io.BytesIO(b"this is no zip archive"), LIMITS)


def test_a_corrupt_entry_is_refused_when_read() -> None:
    data = bytearray(make_zip([("a.txt", b"hello world, hello world" * 50)]).getvalue())
    compressed_start = data.index(b"a.txt") + len("a.txt")
    data[compressed_start + 5] ^= 0xFF  # damage the deflated bytes: the CRC check fails
    dataset = ZipDataset(io.BytesIO(bytes(data)), LIMITS)
    with pytest.raises(UnsafeArchive, match="corrupt"):
        dataset.read("a.txt")


def test_a_folder_is_read_without_links_special_files_or_escapes(tmp_path: Path) -> None:
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "a.xml").write_text("<a/>")
    (tmp_path.parent / "outside.txt").write_text("secret")
    dataset = DirectoryDataset(tmp_path)
    assert dataset.names() == ["Annotations/a.xml"]
    assert dataset.read("Annotations/a.xml") == b"<a/>"
    for name in ("../outside.txt", "/etc/passwd"):
        with pytest.raises(FileNotFoundError):
            dataset.read(name)
    (tmp_path / "link.txt").symlink_to(tmp_path.parent / "outside.txt")
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(UnsafeArchive) as caught:
        DirectoryDataset(tmp_path)
    assert {problem.file for problem in caught.value.problems} == {"link.txt", "pipe"}
