"""Starting points: local weight files that training runs may start from (profiles name them per model).

`starting_point_register` is the one way in, for `manage.py import_weights` (a timm or torchvision file someone
brought) and for self-supervised pretraining on the lab's own fields: it checks the state dict against the
architecture (`inference.core.weights.prepare_starting_point`), stores it translated to the layout training loads
under AICELL_MODEL_DIR/starting_points/, and records its sha256 and key report. Nothing is ever downloaded.

torch is imported only inside the function that reads weights, so web processes stay light.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from aicell.errors import ValidationFailed
from training.models import StartingPoint, StartingPointKind

STARTING_POINT_DIR = "starting_points"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def starting_point_name_valid(name: str) -> bool:
    """1-64 letters, digits, '.', '_' or '-', starting with a letter or digit (also a file name under the model dir)."""
    return bool(_NAME.match(name))


def starting_point_register(
    *, name: str, arch: str, state_dict_path: Path, kind: str, source: str, user: Any = None
) -> StartingPoint:
    """Check `state_dict_path` against `arch` and register it as starting point `name`.

    The file may be a bare state dict or wrap one ({'state_dict': ...} / {'model': ...}); for a detector arch it
    may be the detector's backbone, a whole detector, or a torchvision classifier of the backbone's family
    (ResNet under an FPN, VGG16 under SSD). ValidationFailed (field name, arch, file or kind) when the name is
    taken or malformed, the arch unknown, or no tensor fits; then nothing is stored.
    """
    from inference.core.weights import StartingPointError, file_sha256, prepare_starting_point, read_state_dict

    if not starting_point_name_valid(name):
        raise ValidationFailed(
            f"starting point name {name!r}: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
            field="name",
        )
    if kind not in StartingPointKind.values:
        raise ValidationFailed(f"kind {kind!r}: one of {', '.join(StartingPointKind.values)}", field="kind")
    if StartingPoint.objects.filter(name=name).exists():
        raise ValidationFailed(f"a starting point named {name!r} exists already", field="name")
    path = Path(state_dict_path)
    if not path.is_file():
        raise ValidationFailed(f"{path}: no such file", field="file")
    try:
        state, report = prepare_starting_point(arch, read_state_dict(path))
    except StartingPointError as error:
        field = "arch" if str(error).startswith("unknown arch") else "file"
        raise ValidationFailed(str(error), field=field) from None

    import torch

    relative = Path(STARTING_POINT_DIR) / f"{name}.pt"
    target = Path(settings.AICELL_MODEL_DIR) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".pt.partial")
    torch.save(state, partial)
    try:
        with transaction.atomic():
            point = StartingPoint.objects.create(
                name=name,
                arch=arch,
                kind=kind,
                file=str(relative),
                sha256=file_sha256(partial),
                keys=report.to_dict(),
                source=source,
                created_by=user if getattr(user, "pk", None) else None,
            )
            partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return point
