"""The OpenAPI schema documents the error answers too, so a client (and the API fuzzing suite) can rely on them.

Every error of the API has one shape, `{status, code, detail, errors: [{field, reason}]}` (aicell.api.exceptions).
`AicellAutoSchema` adds it to every operation under /api/v1/ for the statuses that operation can answer; a view
documents an unusual one itself (e.g. a GET that answers 409) with `extend_schema(responses={409: ApiErrorSerializer})`.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import FieldDoesNotExist
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers
from rest_framework.permissions import AllowAny

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
ERROR_DESCRIPTIONS = {
    400: "The request is invalid; `errors` names each field and why.",
    401: "Not authenticated (send `Authorization: Token <key>` or log in).",
    403: "Your role does not allow this (or the CSRF check of a session failed).",
    404: "No such object, or one you may not see (answered exactly alike).",
    409: "The object changed since you read it, is in the wrong state, or already exists; nothing was changed.",
    413: "The upload exceeds a configured limit.",
    415: "The request body has a media type this operation does not read.",
    429: "Too many attempts; wait and try again.",
    503: "The database is unavailable; try again (see Retry-After).",
}


class ApiErrorItemSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="the input it concerns (a body key, a query parameter, a file)")
    reason = serializers.CharField()


class ApiErrorSerializer(serializers.Serializer):
    """The shape of every error answer; some carry more keys (e.g. a 409 the current state of the object)."""

    status = serializers.IntegerField()
    code = serializers.CharField()
    detail = serializers.CharField()
    # DRF moves declared fields off the class, so this key does not shadow `Serializer.errors`.
    errors = ApiErrorItemSerializer(many=True, required=False)  # type: ignore[assignment]


def _model_field_allows_blank(field: serializers.Field) -> bool:
    """Whether the model field behind a read-only serializer field may hold "" (DRF drops `allow_blank` from the
    fields it makes read-only, so the documented enum would otherwise leave the stored "" out)."""
    meta = getattr(field.parent, "Meta", None)
    model = getattr(meta, "model", None)
    if model is None or not field.source or "." in field.source:
        return False
    try:
        return bool(model._meta.get_field(field.source).blank)
    except FieldDoesNotExist:
        return False


class AicellAutoSchema(AutoSchema):
    def _map_serializer_field(self, field: Any, direction: Any, bypass_extensions: bool = False) -> Any:
        if isinstance(field, serializers.ChoiceField) and field.read_only and not field.allow_blank:
            # Serializer fields are copied per serializer instance: this changes the schema of this one only.
            field.allow_blank = _model_field_allows_blank(field)
        return super()._map_serializer_field(field, direction, bypass_extensions)

    def _map_basic_serializer(self, serializer: Any, direction: Any) -> Any:
        """A serializer's `Meta.left_out_for_some_readers` names keys it answers only to some roles (e.g. upload
        names, which researchers never see): documented, but not required."""
        schema = super()._map_basic_serializer(serializer, direction)
        optional = set(getattr(getattr(serializer, "Meta", None), "left_out_for_some_readers", ()))
        if optional and "required" in schema:
            schema["required"] = [name for name in schema["required"] if name not in optional]
            if not schema["required"]:
                del schema["required"]
        return schema

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        if direction != "response" or not self.path.startswith("/api/v1/"):
            return responses
        for code in sorted(self.error_statuses()):
            if str(code) not in responses:
                body = self._get_response_for_code(ApiErrorSerializer, str(code), ["application/json"], direction)
                responses[str(code)] = {**body, "description": ERROR_DESCRIPTIONS[code]}
        return responses

    def error_statuses(self) -> set[int]:
        """The error statuses this operation can answer, from what the view declares."""
        view = self.view
        method = self.method.upper()
        statuses = {503}
        if getattr(view, "authentication_classes", None):
            statuses.add(401)  # a wrong token is refused whatever the permissions
            if method not in SAFE_METHODS:
                statuses.add(403)  # a session without its CSRF token
        if not all(isinstance(permission, AllowAny) for permission in view.get_permissions()):
            statuses |= {401, 403}
        has_path_parameters = "{" in self.path
        has_query = bool(self._get_filter_parameters()) or bool(self._get_pagination_parameters())
        has_body = method in ("POST", "PUT", "PATCH")
        if has_path_parameters or self._get_pagination_parameters():
            statuses.add(404)
        if has_body or has_query or method not in SAFE_METHODS or self._has_declared_parameters():
            statuses.add(400)
        if method not in SAFE_METHODS:
            statuses.add(409)
        if has_body:
            statuses.add(415)
            if any("multipart" in getattr(parser, "media_type", "") for parser in view.get_parsers()):
                statuses.add(413)
        if getattr(view, "throttle_classes", None):
            statuses.add(429)
        return statuses

    def _has_declared_parameters(self) -> bool:
        return any(location == "query" for _, location in self._process_override_parameters(direction="request"))
