"""A small synthetic smear dataset made by the tests: coloured discs and squares on a pinkish background.

Classes (taxonomy ids) differ by colour: 0 blue-violet discs (myeloblast), 6 orange discs (eosinophil),
12 dark-purple small discs (lymphocyte). Uncountable cells are grey squares (class None). Every field has
2-3 objects that do not overlap; fields are split by patient (2 fields per patient).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from training.core.records import CellRecord, FieldRecord

COLOURS = {0: (90, 60, 200), 6: (235, 130, 40), 12: (70, 20, 90)}
RADII = {0: 9, 6: 8, 12: 6}
CLASS_IDS = tuple(COLOURS)


def make_field(rng: np.random.Generator, size: int) -> tuple[np.ndarray, list[CellRecord]]:
    image = np.empty((size, size, 3), np.float32)
    image[:] = (235, 200, 205)
    image += rng.normal(0, 6, image.shape)
    yy, xx = np.mgrid[0:size, 0:size]
    cells: list[CellRecord] = []
    centres: list[tuple[float, float]] = []
    for _ in range(int(rng.integers(2, 4))):
        for _attempt in range(50):
            cx, cy = rng.uniform(12, size - 12, 2)
            if all((cx - x) ** 2 + (cy - y) ** 2 > 24**2 for x, y in centres):
                break
        centres.append((cx, cy))
        if rng.random() < 0.25:
            half = 7.0
            mask = (abs(xx - cx) <= half) & (abs(yy - cy) <= half)
            image[mask] = (130, 130, 130)
            cells.append(CellRecord((cx - half, cy - half, cx + half + 1, cy + half + 1), False, None))
        else:
            cls = int(rng.choice(CLASS_IDS))
            r = RADII[cls]
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r**2
            image[mask] = COLOURS[cls]
            image[mask] += rng.normal(0, 8, (int(mask.sum()), 3))
            cells.append(CellRecord((cx - r, cy - r, cx + r + 1, cy + r + 1), True, cls))
    return np.clip(image, 0, 255).astype(np.uint8), cells


def make_dataset(folder: Path, *, fields: int = 48, size: int = 64, seed: int = 0) -> list[FieldRecord]:
    """`fields` fields: 2/3 train, 1/6 val, 1/6 test (per patient)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(fields):
        image, cells = make_field(rng, size)
        path = folder / f"field_{i:03d}.png"
        Image.fromarray(image).save(path)
        patient = i // 2
        share = (patient % 6) / 6
        split = "train" if share < 4 / 6 else "val" if share < 5 / 6 else "test"
        records.append(FieldRecord(f"field:{i}", str(path), size, size, f"P{patient}", split, tuple(cells)))
    return records
