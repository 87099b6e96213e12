"""What is wrong with a dataset, said so that a person can act on it.

Every problem names the file it was found in and, when it concerns one, the image. Problems of one kind (the same
unknown label, boxes outside their image, images that cannot be found) are summed up in one line with their counts
and the first few images named; a problem that makes others follow (an image that cannot be found leaves its boxes
nowhere to go) counts those boxes instead of listing them again. The import's CSV report lists everything, one row
per problem and per note (boxes clamped, images skipped, warnings).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

IMAGES_NAMED = 5  # how many images a summary line names before "..."
REPORT_COLUMNS = ("outcome", "kind", "file", "image", "boxes", "reason")


@dataclass(frozen=True)
class Problem:
    """Something wrong with (or worth knowing about) one file of a dataset, in words."""

    file: str
    reason: str
    # What is wrong without where: problems of one kind are summed up together ("" = the reason itself).
    kind: str = ""
    image: str = ""  # the image it concerns (its file name), if any
    # The boxes it concerns: its own, and those of a refused image that were not checked because of it.
    boxes: int = 0

    @property
    def group(self) -> str:
        return self.kind or self.reason

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "reason": self.reason, "kind": self.group, "image": self.image, "boxes": self.boxes}


def counted(number: int, one: str, many: str) -> str:
    return f"{number:,} {one if number == 1 else many}"


@dataclass
class ProblemGroup:
    kind: str
    example: str  # the first problem's reason: one concrete case to look at
    problems: int = 0
    boxes: int = 0
    images: dict[str, None] = field(default_factory=dict)  # in order of first appearance
    files: dict[str, None] = field(default_factory=dict)

    def summary(self) -> str:
        """e.g. "label 'neutrophil' is not in the label map: 3,000 boxes in 20 images (a.jpg, b.jpg, ...); first:
        a.jpg: label 'neutrophil' (150 boxes) is not in the label map"."""
        counts = []
        if self.boxes:
            counts.append(counted(self.boxes, "box", "boxes"))
        if self.images:
            named = list(self.images)[:IMAGES_NAMED]
            more = ", ..." if len(self.images) > IMAGES_NAMED else ""
            counts.append(f"in {counted(len(self.images), 'image', 'images')} ({', '.join(named)}{more})")
        elif self.problems > 1:
            counts.append(counted(self.problems, "time", "times"))
        text = f"{self.kind}: {' '.join(counts)}" if counts else self.kind
        if self.example != self.kind:
            text += f"; {'first: ' if self.problems > 1 else ''}{self.example}"
        return text

    @property
    def where(self) -> str:
        files = list(self.files)
        if len(files) == 1:
            return files[0]
        return f"{len(files)} files ({', '.join(files[:3])}{', ...' if len(files) > 3 else ''})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "summary": self.summary(),
            "problems": self.problems,
            "boxes": self.boxes,
            "images": len(self.images),
            "first_images": list(self.images)[:IMAGES_NAMED],
            "files": list(self.files)[:IMAGES_NAMED],
        }


def problems_grouped(problems: Iterable[Problem]) -> list[ProblemGroup]:
    """The problems summed up by kind, in the order each kind first appears."""
    groups: dict[str, ProblemGroup] = {}
    for problem in problems:
        group = groups.setdefault(problem.group, ProblemGroup(problem.group, problem.reason))
        group.problems += 1
        group.boxes += problem.boxes
        if problem.image:
            group.images[problem.image] = None
        group.files[problem.file] = None
    return list(groups.values())


def report_csv(rows: Iterable[tuple[str, Problem]]) -> str:
    """The CSV report: one row per (outcome, problem); outcome says what became of it (refused, clamped, ...)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    for outcome, problem in rows:
        writer.writerow((outcome, problem.group, problem.file, problem.image, problem.boxes, problem.reason))
    return buffer.getvalue()
