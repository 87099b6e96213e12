"""Page-number pagination of every list: `?page=` and `?page_size=` (1 to 500; more is capped at 500)."""

from __future__ import annotations

from typing import Any

from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request

from aicell.api.fields import parse_strict_int
from aicell.errors import ValidationFailed


class StandardPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_number(self, request: Request, paginator: Any) -> Any:
        """A page that is not a whole number of at least 1 (or "last") is refused; a page past the end is 404."""
        raw = request.query_params.get(self.page_query_param)
        if raw is None or raw in self.last_page_strings:
            return raw or 1
        if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
            raise ValidationFailed(f"page must be a whole number from 1; got {raw!r}.", field="page")
        return parse_strict_int(raw, "page", min_value=1)

    def get_page_size(self, request: Request) -> int:
        """A page size that is not a whole number of at least 1 is refused, not silently replaced by the default."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
            raise ValidationFailed(
                f"page_size must be a whole number from 1 to {self.max_page_size}; got {raw!r}.", field="page_size"
            )
        return min(parse_strict_int(raw, "page_size", min_value=1), self.max_page_size)
