"""Renderers for the non-JSON formats of the API: the view builds the document, the renderer passes it on.

Errors are never rendered through these: views that offer them answer errors in the shared JSON shape
(see `annotations.views.DifferentialActions.handle_exception`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework.renderers import BaseRenderer


class PassThroughRenderer(BaseRenderer):
    charset: str | None = None

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Mapping[str, Any] | None = None
    ) -> bytes:
        if isinstance(data, bytes):
            return data
        if isinstance(data, str):
            return data.encode(self.charset or "utf-8")
        raise TypeError(f"{type(self).__name__} renders a finished document, not {type(data).__name__}")


class CSVRenderer(PassThroughRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"


class PDFRenderer(PassThroughRenderer):
    media_type = "application/pdf"
    format = "pdf"
