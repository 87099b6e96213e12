"""User management (admins) and each role's home summary: thin adapters over `aicell.accounts` and `aicell.home`."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from aicell import accounts
from aicell.api.parsers import JSONParser
from aicell.api.permissions import RoleAccess
from aicell.home import home_summary
from aicell.roles import ROLE_CHOICES, Role

ADMINS = frozenset({Role.ADMIN})


class UserSerializer(serializers.ModelSerializer):
    email = serializers.CharField(read_only=True, help_text="empty when none was given")
    roles = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "username", "email", "roles", "is_active", "is_staff", "last_login", "date_joined"]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.ChoiceField(choices=ROLE_CHOICES)))
    def get_roles(self, user: User) -> list[str]:
        return sorted(group.name for group in user.groups.all() if group.name in {r.value for r in Role})


class UserCreateSerializer(serializers.Serializer):
    username = serializers.CharField(allow_blank=True)
    email = serializers.CharField(required=False, allow_blank=True)
    password = serializers.CharField(allow_blank=True, style={"input_type": "password"})
    roles = serializers.ListField(child=serializers.CharField())


class UserUpdateSerializer(serializers.Serializer):
    email = serializers.CharField(required=False, allow_blank=True)
    roles = serializers.ListField(child=serializers.CharField(), required=False)
    is_active = serializers.BooleanField(required=False, help_text="false: deactivated (users are never deleted)")


class PasswordSerializer(serializers.Serializer):
    password = serializers.CharField(allow_blank=True, style={"input_type": "password"})


class UserViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Admins create users, give and take roles, deactivate (never delete) and reset passwords."""

    serializer_class = UserSerializer
    # JSON only (the page sends JSON): a form's empty "roles=" reads as absent in DRF and a wrong value went through.
    parser_classes = [JSONParser]
    permission_classes = [RoleAccess]
    read_roles = ADMINS
    write_roles = ADMINS
    filterset_fields = ["is_active"]
    ordering_fields = ["username", "date_joined"]

    def get_queryset(self) -> QuerySet[User]:
        return accounts.users_all()

    def _answer(self, user: User, status_code: int = 200) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=user.pk)).data, status=status_code)

    @extend_schema(request=UserCreateSerializer, responses={201: UserSerializer})
    def create(self, request: Request) -> Response:
        body = UserCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = accounts.user_create(actor=request.user, **body.validated_data)
        return self._answer(user, status.HTTP_201_CREATED)

    @extend_schema(request=UserUpdateSerializer, responses={200: UserSerializer})
    def partial_update(self, request: Request, pk: str) -> Response:
        body = UserUpdateSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        user = accounts.user_update(user_id=self.get_object().pk, actor=request.user, **body.validated_data)
        return self._answer(user)

    @extend_schema(request=PasswordSerializer, responses={200: UserSerializer})
    @action(detail=True, methods=["post"])
    def password(self, request: Request, pk: str) -> Response:
        """Set a new password (the admin tells it to the user)."""
        body = PasswordSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = accounts.user_password_set(
            user_id=self.get_object().pk, password=body.validated_data["password"], actor=request.user
        )
        return self._answer(user)


class HomeView(APIView):
    """What needs the logged-in user now: one block per role they hold."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> Response:
        summary: dict[str, Any] = home_summary(request.user)
        return Response(summary)
