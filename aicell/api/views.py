"""Platform-wide endpoints: health and the browser's session login."""

from __future__ import annotations

from django.contrib.auth import authenticate, login, logout
from django.middleware.csrf import get_token
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import ensure_csrf_cookie
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from aicell.errors import FieldError, ValidationFailed
from aicell.health import platform_health
from aicell.roles import ROLE_CHOICES, roles_of

MeSerializer = inline_serializer(
    "Me",
    {
        "id": serializers.IntegerField(allow_null=True, help_text="null when nobody is logged in"),
        "username": serializers.CharField(allow_null=True),
        "roles": serializers.ListField(child=serializers.ChoiceField(choices=ROLE_CHOICES)),
    },
)


def me_payload(user: object) -> dict[str, object]:
    return {"id": user.pk, "username": user.get_username(), "roles": sorted(roles_of(user))}  # type: ignore[attr-defined]


class HealthView(APIView):
    """Database, broker and worker status; 503 when the database is down."""

    permission_classes = [AllowAny]
    authentication_classes: list[type] = []

    @extend_schema(responses={200: dict, 503: dict})
    def get(self, request: Request) -> Response:
        report = platform_health()
        return Response(report, status=200 if report["database"]["ok"] else 503)


class LoginThrottle(AnonRateThrottle):
    rate = "20/min"


class LoginSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"})


@method_decorator(ensure_csrf_cookie, name="dispatch")
class SessionView(APIView):
    """GET: who is logged in (and a CSRF cookie); POST: log in; DELETE: log out."""

    throttle_classes = [LoginThrottle]

    def get_permissions(self) -> list:
        return [AllowAny()] if self.request.method in ("GET", "POST") else [IsAuthenticated()]

    @extend_schema(responses={200: MeSerializer})
    def get(self, request: Request) -> Response:
        get_token(request)
        if not request.user.is_authenticated:
            return Response({"id": None, "username": None, "roles": []})
        return Response(me_payload(request.user))

    @extend_schema(request=LoginSerializer, responses={200: MeSerializer})
    def post(self, request: Request) -> Response:
        body = LoginSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = authenticate(request, **body.validated_data)
        if user is None:
            raise ValidationFailed(
                "Wrong username or password.", errors=[FieldError("password", "does not match the username")]
            )
        login(request, user)
        return Response(me_payload(user))

    @extend_schema(responses={204: None})
    def delete(self, request: Request) -> Response:
        logout(request)
        return Response(status=204)
