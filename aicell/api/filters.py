"""The filter backend of every list: django-filter, with an empty or unreadable filter value refused, not ignored.

django-filter reads `?smear=` as "no filter" (an HTML form's empty field); an API client that sends it has made a
mistake, and answering the unfiltered list would hide that. Leave a parameter out to not filter by it.
"""

from __future__ import annotations

from typing import Any

from django_filters import BooleanFilter
from django_filters.rest_framework import DjangoFilterBackend

from aicell.errors import FieldError, ValidationFailed

BOOLEAN_SPELLINGS = frozenset({"true", "false", "1", "0"})


class StrictFilterBackend(DjangoFilterBackend):
    def get_filterset(self, request: Any, queryset: Any, view: Any) -> Any:
        filterset = super().get_filterset(request, queryset, view)
        if filterset is None:
            return None
        errors = []
        for name, declared in sorted(filterset.filters.items()):
            raw = request.query_params.get(name)
            if raw == "":
                errors.append(FieldError(name, "must not be empty; leave the parameter out to not filter by it"))
            elif raw is not None and isinstance(declared, BooleanFilter) and raw.lower() not in BOOLEAN_SPELLINGS:
                # django-filter reads anything else ("null", "5", "yes please") as "no filter".
                errors.append(FieldError(name, f"must be true or false; got {raw!r}"))
        if errors:
            raise ValidationFailed(f"{errors[0].field}: {errors[0].reason}", errors=errors)
        return filterset
