"""Turn the result dataclasses of the pure logic modules into plain JSON values.

The API layer returns these results as they are, so `to_dict()` must yield only dict/list/str/int/float/bool/None:
no tuples, enums or numpy scalars, which `json.dumps` either rejects or that a client would not expect.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from typing import Any

import numpy as np


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: to_jsonable(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        # NaN/inf are not JSON; the modules use None for undefined values, so reaching this is a bug.
        raise ValueError(f"non-finite float {value!r} in a result")
    return value


class JsonMixin:
    """Gives a dataclass `to_dict()` returning plain JSON values."""

    def to_dict(self) -> dict[str, Any]:
        result = to_jsonable(self)
        assert isinstance(result, dict)
        return result
