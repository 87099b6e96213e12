"""The filter backend of every list: django-filter, with an empty filter value refused instead of ignored.

django-filter reads `?smear=` as "no filter" (an HTML form's empty field); an API client that sends it has made a
mistake, and answering the unfiltered list would hide that. Leave a parameter out to not filter by it.
"""

from __future__ import annotations

from typing import Any

from django_filters.rest_framework import DjangoFilterBackend

from aicell.errors import FieldError, ValidationFailed


class StrictFilterBackend(DjangoFilterBackend):
    def get_filterset(self, request: Any, queryset: Any, view: Any) -> Any:
        filterset = super().get_filterset(request, queryset, view)
        if filterset is None:
            return None
        empty = sorted(name for name in filterset.filters if request.query_params.get(name, None) == "")
        if empty:
            raise ValidationFailed(
                f"Empty filter value for {', '.join(empty)}; leave a parameter out to not filter by it.",
                errors=[FieldError(name, "must not be empty") for name in empty],
            )
        return filterset
