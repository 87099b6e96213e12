"""Finding the image file a dataset names, whatever tool wrote the reference.

A reader first looks where its format keeps images (COCO: `images/<split>/<name>`, ...; VOC: `JPEGImages/`). Tools
also write references that lead nowhere inside the dataset: absolute paths of the machine they ran on, URLs, or
Label Studio's `/data/upload/<project>/<8 hex>-<name>` and `/data/local-files/?d=<path>`. Given an image folder
(`--images`), such a reference is resolved by its file name in that folder: exactly, else without Label Studio's
upload prefix. A name the folder holds twice is a problem, never a guess; without a folder, a reference outside the
dataset is a problem that says how to give one. Looking a name up only ever reads files the dataset (or the folder)
lists, so a hostile reference (`../../etc/passwd`) can at worst name a file by its last part.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from annotations.interchange.archive import DatasetFiles, entry_name_problem

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_LABEL_STUDIO_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-(?=.)")
OUTSIDE_KIND = "image named by an absolute path, a URL or '..' (give the image folder, --images, to find it by name)"
NOT_FOUND_KIND = "image file not found in the dataset"
NOT_IN_FOLDER_KIND = "image not found by its file name in the image folder"
AMBIGUOUS_KIND = "image file name found more than once in the image folder"


class ImageNotFound(LookupError):
    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind, self.reason = kind, reason


@dataclass(frozen=True)
class ImageFolder:
    """Where images are looked up by file name: a folder inside the dataset's own files (the API's `images`), or a
    folder of its own (the command line's `--images DIR`), whose files are then named `<prefix><relative name>` with
    its absolute path as prefix, which no dataset entry can start with (entries are relative)."""

    files: DatasetFiles
    under: str = ""  # a folder inside `files`; "" = all of them
    prefix: str = ""  # "" when `files` are the dataset's own

    @property
    def label(self) -> str:
        return self.prefix.rstrip("/") or self.under or "the dataset"


def reference_file_name(reference: str) -> str:
    """The file name at the end of a path, a Windows path, a URL or a Label Studio local-files reference."""
    path = reference
    if _URL.match(reference) or "?" in reference:
        split = urlsplit(reference)
        local = parse_qs(split.query).get("d")  # Label Studio: /data/local-files/?d=<path under its document root>
        path = local[0] if local else unquote(split.path)
    return re.split(r"[\\/]", path)[-1]


class ImageLookup:
    """Where a dataset's image references lead; `read` reads what `find` found."""

    def __init__(self, files: DatasetFiles, folder: ImageFolder | None = None) -> None:
        self.files, self.folder = files, folder
        self.available = set(files.names())
        self.found_by_name = 0
        self._by_name: dict[str, list[str]] | None = None

    def read(self, path: str) -> bytes:
        folder = self.folder
        if folder is not None and folder.prefix and path.startswith(folder.prefix):
            return folder.files.read(path[len(folder.prefix) :])
        return self.files.read(path)

    def find(self, reference: str, candidates: Iterable[str]) -> str:
        """The first candidate path the dataset holds, else (with an image folder) the folder's file of that name.

        Candidates are the places the reader's format keeps images; only names the dataset lists can match, so
        candidates built from a hostile reference match nothing. Raises ImageNotFound (kind, reason)."""
        found = next((candidate for candidate in candidates if candidate in self.available), None)
        if found is not None:
            return found
        if self.folder is not None:
            return self._by_file_name(reference, self.folder)
        outside = "the name is a URL" if _URL.match(reference) else entry_name_problem(reference)
        if outside is not None:
            raise ImageNotFound(OUTSIDE_KIND, f"{reference!r}: {outside}")
        raise ImageNotFound(NOT_FOUND_KIND, f"{reference!r}: no such image file in the dataset")

    def _index(self, folder: ImageFolder) -> dict[str, list[str]]:
        if self._by_name is None:
            under = f"{folder.under.strip('/')}/" if folder.under.strip("/") else ""
            self._by_name = {}
            for name in folder.files.names():
                if name.startswith(under):
                    self._by_name.setdefault(posixpath.basename(name), []).append(folder.prefix + name)
        return self._by_name

    def _by_file_name(self, reference: str, folder: ImageFolder) -> str:
        index = self._index(folder)
        name = reference_file_name(reference)
        matches = index.get(name)
        if not matches and _LABEL_STUDIO_UPLOAD_PREFIX.match(name):
            matches = index.get(_LABEL_STUDIO_UPLOAD_PREFIX.sub("", name, count=1))
        if not matches:
            raise ImageNotFound(NOT_IN_FOLDER_KIND, f"{reference!r}: no file named {name!r} in {folder.label}")
        if len(matches) > 1:
            shown = ", ".join(matches[:3])
            raise ImageNotFound(AMBIGUOUS_KIND, f"{reference!r}: {len(matches)} files named {name!r} ({shown})")
        self.found_by_name += 1
        return matches[0]
