"""Request body parsers with the limits Django applies to forms also applied to JSON.

DRF's JSON parser reads the whole body whatever its size and lets a deeply nested document overflow the parser's
stack (a 500). Here a JSON body larger than DATA_UPLOAD_MAX_MEMORY_SIZE is refused with 413 before it is read, and
one nested too deeply, or that is not an object (every body of this API is one), is refused with 400, both in the
API's error shape.
"""

from __future__ import annotations

import codecs
import json
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.settings import api_settings
from rest_framework.utils.json import strict_constant

from aicell.errors import PayloadTooLarge


def _body_limit() -> int | None:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return int(limit) if limit is not None else None


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        parser_context = parser_context or {}
        request = parser_context.get("request")
        limit = _body_limit()
        if limit is not None and request is not None:
            try:
                declared = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                declared = 0
            if declared > limit:
                raise PayloadTooLarge(
                    f"The JSON body is {declared:,} bytes; the limit is {limit:,} bytes.", field="body"
                )
        raw = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(raw) > limit:
            raise PayloadTooLarge(f"The JSON body is larger than the limit of {limit:,} bytes.", field="body")
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.decode(raw, encoding)
            document = json.loads(text, parse_constant=strict_constant if api_settings.STRICT_JSON else None)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply") from None
        if not isinstance(document, dict):
            # Every request body of this API is an object; views may rely on that.
            raise ParseError(f"JSON parse error - the body must be an object, not {type(document).__name__}")
        return document
