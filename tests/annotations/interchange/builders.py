"""Small foreign datasets written by hand (VOC folders, COCO folders, zips) for the interchange tests."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

VocObject = tuple[str, float, float, float, float]  # name, xmin, ymin, xmax, ymax (1-based, inclusive)


def voc_xml(filename: str, width: int, height: int, objects: list[VocObject], *, prolog: str = "") -> str:
    parts = [
        f"<object><name>{name}</name><bndbox><xmin>{x0:g}</xmin><ymin>{y0:g}</ymin>"
        f"<xmax>{x1:g}</xmax><ymax>{y1:g}</ymax></bndbox></object>"
        for name, x0, y0, x1, y1 in objects
    ]
    return (
        f"{prolog}<annotation><folder>JPEGImages</folder><filename>{filename}</filename>"
        f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>{''.join(parts)}</annotation>"
    )


def write_voc(root: Path, fields: dict[str, tuple[bytes, int, int, list[VocObject]]]) -> Path:
    """fields: stem -> (jpeg bytes, width, height, objects)."""
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
    for stem, (data, width, height, objects) in fields.items():
        (root / "JPEGImages" / f"{stem}.jpg").write_bytes(data)
        (root / "Annotations" / f"{stem}.xml").write_text(voc_xml(f"{stem}.jpg", width, height, objects))
    return root


def write_coco(root: Path, images: list[dict[str, Any]], annotations: list[dict[str, Any]], files: dict[str, bytes], *,
               categories: list[dict[str, Any]] | None = None, split: str = "train") -> Path:  # fmt: skip
    """A COCO folder: annotations/instances_<split>.json and images/<split>/<file_name>."""
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "images" / split).mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (root / "images" / split / name).write_bytes(data)
    document = {
        "images": images,
        "annotations": annotations,
        "categories": categories if categories is not None else [{"id": 12, "name": "lymphoblast"}],
    }
    (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(document))
    return root


def zip_folder(root: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(root).as_posix())
    return buffer.getvalue()


def zip_entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}
