"""Reading dataset files from a zip archive or a folder without trusting either.

A zip is checked entry by entry before anything is read: absolute names, `..`, backslashes, links, device files,
FIFOs, sockets, encrypted or duplicate entries are refused (zip-slip and friends), and the archive size, entry count,
total and per-entry expanded size and per-entry compression ratio are bounded (zip bombs). Nothing is ever extracted
to disk: importers read entries into memory through `read`, which also enforces the declared sizes.
A folder is read with the same rules for what may be in it: regular files only, no links, nothing outside it.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from annotations.interchange.problems import Problem

# Small entries cannot be bombs whatever their ratio; tiny repetitive files (an empty label list) compress well.
RATIO_CHECK_MIN_BYTES = 1024 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class ArchiveLimits:
    max_archive_bytes: int
    max_entries: int
    max_total_bytes: int
    max_entry_bytes: int
    max_ratio: float


class UnsafeArchive(ValueError):
    """The archive (or folder) is refused as a whole; `problems` names every offending entry."""

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [Problem("archive", message)]


class DatasetFiles(Protocol):
    """The files of a dataset, by relative POSIX path."""

    label: str

    def names(self) -> list[str]: ...

    def read(self, name: str) -> bytes: ...


def entry_name_problem(name: str) -> str | None:
    """Why an entry name is unsafe to use as a path (None when it is fine)."""
    if not name:
        return "the entry has no name"
    if "\x00" in name:
        return "the name contains a NUL character"
    if "\\" in name:
        return "the name contains a backslash (a Windows path separator could escape the dataset folder)"
    if name.startswith("/") or _DRIVE.match(name):
        return "the name is an absolute path"
    if ".." in name.split("/"):
        return "the name contains '..' (a path leading outside the dataset folder)"
    return None


def _entry_type_problem(info: zipfile.ZipInfo) -> str | None:
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if kind in (0, stat.S_IFREG, stat.S_IFDIR):
        return None
    names = {
        stat.S_IFLNK: "a symbolic link",
        stat.S_IFCHR: "a character device file",
        stat.S_IFBLK: "a block device file",
        stat.S_IFIFO: "a FIFO",
        stat.S_IFSOCK: "a socket",
    }
    return f"the entry is {names.get(kind, f'a special file (mode {mode:o})')}; only regular files are accepted"


def _entry_size_problem(info: zipfile.ZipInfo, limits: ArchiveLimits) -> str | None:
    if info.flag_bits & 0x1:
        return "the entry is encrypted"
    if info.file_size > limits.max_entry_bytes:
        return f"the entry expands to {info.file_size:,} bytes; the limit is {limits.max_entry_bytes:,}"
    if info.file_size >= RATIO_CHECK_MIN_BYTES and info.file_size > limits.max_ratio * max(info.compress_size, 1):
        ratio = info.file_size / max(info.compress_size, 1)
        return f"the entry expands {ratio:,.0f} times (limit {limits.max_ratio:g}): a zip bomb"
    return None


def _file_size(handle: IO[bytes]) -> int:
    position = handle.tell()
    size = handle.seek(0, os.SEEK_END)
    handle.seek(position)
    return size


class ZipDataset:
    """The regular files of a zip archive, checked as a whole when opened."""

    def __init__(self, handle: IO[bytes], limits: ArchiveLimits, *, label: str = "archive") -> None:
        self.label = label
        self._limits = limits
        size = _file_size(handle)
        if size > limits.max_archive_bytes:
            raise UnsafeArchive(f"the archive is {size:,} bytes; the limit is {limits.max_archive_bytes:,} bytes")
        try:
            self._zip = zipfile.ZipFile(handle)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
            raise UnsafeArchive(f"not a readable zip archive ({exc})") from None
        self._files = self._checked_entries()

    def _checked_entries(self) -> dict[str, zipfile.ZipInfo]:
        infos = self._zip.infolist()
        if len(infos) > self._limits.max_entries:
            raise UnsafeArchive(f"the archive holds {len(infos):,} entries; the limit is {self._limits.max_entries:,}")
        problems: list[Problem] = []
        files: dict[str, zipfile.ZipInfo] = {}
        seen: set[str] = set()
        total = 0
        for info in infos:
            name = info.filename
            reason = entry_name_problem(name) or _entry_type_problem(info) or _entry_size_problem(info, self._limits)
            if reason is None and name in seen:
                reason = "the archive holds two entries of this name"
            seen.add(name)
            if reason is not None:
                problems.append(Problem(name or "(unnamed entry)", reason))
                continue
            total += info.file_size
            if not info.is_dir():
                files[name] = info
        if total > self._limits.max_total_bytes:
            problems.append(
                Problem(
                    "archive", f"the entries expand to {total:,} bytes; the limit is {self._limits.max_total_bytes:,}"
                )
            )
        if problems:
            raise UnsafeArchive(f"the archive is refused ({len(problems)} unsafe entries)", problems)
        return files

    def names(self) -> list[str]:
        return sorted(self._files)

    def read(self, name: str) -> bytes:
        info = self._files.get(name)
        if info is None:
            raise FileNotFoundError(f"{name} is not in the archive")
        try:
            with self._zip.open(info) as entry:
                # zipfile stops at the declared size and checks the CRC: a lying header cannot expand further.
                data = entry.read(info.file_size + 1)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise UnsafeArchive(
                f"{name}: the entry is corrupt ({exc})", [Problem(name, f"corrupt entry: {exc}")]
            ) from None
        if len(data) != info.file_size:
            raise UnsafeArchive(f"{name}: the entry does not match its declared size", [Problem(name, "size mismatch")])
        return data

    def close(self) -> None:
        self._zip.close()


class DirectoryDataset:
    """The regular files under a folder; links and special files are refused, nothing outside it is read."""

    def __init__(self, root: Path, *, label: str | None = None) -> None:
        self._root = root.resolve()
        self.label = label or self._root.name
        if not self._root.is_dir():
            raise UnsafeArchive(f"{root} is not a folder")
        self._files = self._walk()

    def _walk(self) -> list[str]:
        problems: list[Problem] = []
        files: list[str] = []
        for directory, subdirs, filenames in os.walk(self._root, followlinks=False):
            for name in [*subdirs, *filenames]:
                path = Path(directory, name)
                relative = path.relative_to(self._root).as_posix()
                mode = path.lstat().st_mode
                if stat.S_ISLNK(mode):
                    problems.append(Problem(relative, "a symbolic link; only regular files are accepted"))
                elif not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                    problems.append(Problem(relative, "a special file; only regular files are accepted"))
                elif stat.S_ISREG(mode):
                    files.append(relative)
        if problems:
            raise UnsafeArchive(f"the folder is refused ({len(problems)} unsafe entries)", problems)
        return sorted(files)

    def names(self) -> list[str]:
        return list(self._files)

    def read(self, name: str) -> bytes:
        if entry_name_problem(name) is not None:
            raise FileNotFoundError(f"{name} is not a file of the dataset")
        path = Path(self._root, name)
        if not path.resolve().is_relative_to(self._root) or path.is_symlink() or not path.is_file():
            raise FileNotFoundError(f"{name} is not a file of the dataset")
        return path.read_bytes()


def iter_names_under(files: DatasetFiles, folder: str) -> Iterator[str]:
    """Names directly inside `folder` ('' for the top level)."""
    prefix = f"{folder.rstrip('/')}/" if folder else ""
    for name in files.names():
        if name.startswith(prefix) and "/" not in name[len(prefix) :]:
            yield name


def join(*parts: str) -> str:
    return posixpath.join(*[part for part in parts if part])
