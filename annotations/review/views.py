"""REST endpoints of double review: thin adapters over `review.services` and the selectors."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from aicell.api.fields import parse_strict_int
from aicell.api.parsers import JSONParser
from aicell.api.permissions import RoleAccess
from aicell.api.versioning import expected_version, request_value, with_version_etag
from aicell.errors import NotFound, ValidationFailed
from aicell.roles import ALL_ROLES, CLINICAL_ROLES, LAB_MANAGERS, Role
from annotations import selectors
from annotations.filters import AssignmentFilter, ConflictFilter
from annotations.models import AnnotationSet, Assignment, CellReview, Conflict, Field, ReviewSettings
from annotations.review import selectors as review_selectors
from annotations.review import services as review_services
from annotations.review.serializers import (
    AnnotatorLoadSerializer,
    AssignmentAutoResultSerializer,
    AssignmentAutoSerializer,
    AssignmentCreateSerializer,
    AssignmentSerializer,
    AuditEventSerializer,
    CellReviewSerializer,
    ConflictResolveSerializer,
    ConflictSerializer,
    ConsensusReopenSerializer,
    ReviewSettingsSerializer,
)
from annotations.serializers import AnnotationSetSerializer, CellSerializer, VersionSerializer
from annotations.truth import truth_q

ADJUDICATORS = frozenset({Role.ADJUDICATOR})
IF_MATCH = OpenApiParameter(
    "If-Match", str, OpenApiParameter.HEADER, required=False, description='the version you read, e.g. "3"'
)
JSON_BODY = [JSONParser, FormParser, MultiPartParser]


class AssignmentViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """`?mine=1` is an annotator's worklist. Adjudicators and admins assign (or let `auto` balance the work)."""

    serializer_class = AssignmentSerializer
    filterset_class = AssignmentFilter
    permission_classes = [RoleAccess]
    read_roles = CLINICAL_ROLES
    write_roles = LAB_MANAGERS
    ordering_fields = ["id", "created_at", "field"]
    action_roles = {"loads": LAB_MANAGERS}

    def get_queryset(self) -> QuerySet[Assignment]:
        return review_selectors.assignments_visible_to(self.request.user)

    @extend_schema(request=AssignmentCreateSerializer, responses={201: AssignmentSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = AssignmentCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        assignment = review_services.assignment_create(
            field_id=body.validated_data["field"], annotator_id=body.validated_data["annotator"], actor=request.user
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=assignment.pk)).data, status=201)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Take a field back from an annotator who has not submitted it (their draft is discarded, audited)."""
        review_services.assignment_delete(assignment_id=self.get_object().pk, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=AssignmentAutoSerializer, responses={201: AssignmentAutoResultSerializer})
    @action(detail=False, methods=["post"])
    def auto(self, request: Request) -> Response:
        """Give every named field (a list, a smear or a case) its two annotators, least open work first."""
        body = AssignmentAutoSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = review_services.assignments_auto_create(
            field_ids=_fields_named(body.validated_data),
            annotator_ids=body.validated_data.get("annotators"),
            actor=request.user,
        )
        created = self.get_queryset().filter(pk__in=[a.pk for a in result.created])
        data = {
            "created": self.get_serializer(created, many=True).data,
            "skipped": [error.to_dict() for error in result.skipped],
        }
        return Response(data, status=201)

    @extend_schema(responses={200: AnnotatorLoadSerializer(many=True)}, filters=False)
    @action(detail=False, methods=["get"], pagination_class=None)
    def loads(self, request: Request) -> Response:
        """Every active annotator with their open work (not paginated): what the assignment page balances."""
        return Response(AnnotatorLoadSerializer(review_selectors.annotator_loads(), many=True).data)


def _fields_named(body: dict[str, Any]) -> list[int]:
    named = [key for key in ("fields", "smear", "case") if key in body]
    if len(named) != 1:
        raise ValidationFailed('Name the fields by exactly one of "fields", "smear" or "case".', field="fields")
    if "fields" in body:
        return list(body["fields"])
    scope = {"smear_id": body["smear"]} if "smear" in body else {"smear__case_id": body["case"]}
    return list(Field.objects.filter(**scope).order_by("id").values_list("pk", flat=True))


class ConflictViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ConflictSerializer
    filterset_class = ConflictFilter
    permission_classes = [RoleAccess]
    read_roles = CLINICAL_ROLES
    action_roles = {"resolve": frozenset({Role.ANNOTATOR, Role.ADJUDICATOR})}
    ordering_fields = ["id", "created_at", "resolved_at"]

    def get_queryset(self) -> QuerySet[Conflict]:
        return review_selectors.conflicts_visible_to(self.request.user).order_by("field_id", "id")

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        conflict = self.get_object()
        return with_version_etag(Response(self.get_serializer(conflict).data), conflict.version)

    @extend_schema(request=ConflictResolveSerializer, parameters=[IF_MATCH], responses={200: ConflictSerializer})
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, pk: str) -> Response:
        """An annotator of the field concedes or keeps; an adjudicator decides. A stale version answers 409."""
        conflict = self.get_object()
        body = ConflictResolveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        review_services.conflict_resolve(
            conflict_id=conflict.pk,
            expected_version=expected_version(request),
            data=body.validated_data,
            actor=request.user,
        )
        conflict = self.get_queryset().get(pk=conflict.pk)
        return with_version_etag(Response(self.get_serializer(conflict).data), conflict.version)


class CellReviewViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Blind double review of queued cells: a reviewer reads the cells they decided (the other's decision only once
    both decided; any other cell answers 404), managers read all."""

    serializer_class = CellReviewSerializer
    permission_classes = [RoleAccess]
    read_roles = CLINICAL_ROLES
    filterset_fields = ["status", "field"]
    ordering_fields = ["id", "created_at"]

    def get_queryset(self) -> QuerySet[CellReview]:
        return review_selectors.cell_reviews_visible_to(self.request.user).prefetch_related("conflicts").order_by("id")


class FieldReviewViewSet(viewsets.GenericViewSet):
    """The double-review views of one field (`/fields/{id}/conflicts`, `history`, `consensus`...): routed beside the
    field viewset under the same prefix, so the field resource itself knows nothing of review."""

    permission_classes = [RoleAccess]
    action_roles = {
        "conflicts": CLINICAL_ROLES,
        "history": CLINICAL_ROLES,
        "consensus": ALL_ROLES,
        "consensus_reopen": ADJUDICATORS,
        "consensus_lock": ADJUDICATORS,
    }

    def get_queryset(self) -> QuerySet[Field]:
        return selectors.fields_visible_to(self.request.user)

    @extend_schema(responses={200: ConflictSerializer(many=True)}, filters=False)
    @action(detail=True, methods=["get"], pagination_class=None)
    def conflicts(self, request: Request, pk: str) -> Response:
        """The field's conflicts (A's and B's versions side by side), once its cross-check has started."""
        field = self.get_object()
        conflicts = (
            review_selectors.conflicts_visible_to(request.user).filter(field=field, cell_review=None).order_by("id")
        )
        if not review_selectors.field_reviews_visible_to(request.user).filter(field=field).exists():
            raise NotFound(f"Field {field.pk} has no cross-check that you take part in.")
        return Response(ConflictSerializer(conflicts, many=True, context=self.get_serializer_context()).data)

    @extend_schema(responses={200: AuditEventSerializer(many=True)}, filters=False)
    @action(detail=True, methods=["get"])
    def history(self, request: Request, pk: str) -> Response:
        """Every recorded change of the field's annotations (who, when, before, after, why) that you may see."""
        events = selectors.field_history_visible_to(request.user, self.get_object())
        page = self.paginate_queryset(events)
        return self.get_paginated_response(AuditEventSerializer(page, many=True).data)

    @extend_schema(responses={200: AnnotationSetSerializer}, filters=False)
    @action(detail=True, methods=["get"])
    def consensus(self, request: Request, pk: str) -> Response:
        """The field's reviewed truth with its cells (404 while there is none)."""
        consensus = self._consensus(self.get_object())
        data = {
            **AnnotationSetSerializer(consensus).data,
            "cells": CellSerializer(consensus.cells.all(), many=True).data,
        }
        return with_version_etag(Response(data), consensus.version)

    @extend_schema(request=ConsensusReopenSerializer, parameters=[IF_MATCH], responses={200: AnnotationSetSerializer})
    @action(detail=True, methods=["post"], url_path="consensus/reopen", parser_classes=JSON_BODY)
    def consensus_reopen(self, request: Request, pk: str) -> Response:
        """Open the locked consensus for adjudicators' changes; needs a reason."""
        field = self.get_object()
        review_services.consensus_reopen(
            field_id=field.pk,
            expected_version=expected_version(request),
            reason=request_value(request, "reason"),
            actor=request.user,
        )
        consensus = self._consensus(field)
        return with_version_etag(Response(AnnotationSetSerializer(consensus).data), consensus.version)

    @extend_schema(request=VersionSerializer, parameters=[IF_MATCH], responses={200: AnnotationSetSerializer})
    @action(detail=True, methods=["post"], url_path="consensus/lock", parser_classes=JSON_BODY)
    def consensus_lock(self, request: Request, pk: str) -> Response:
        """Lock the reopened consensus again."""
        field = self.get_object()
        review_services.consensus_lock(
            field_id=field.pk, expected_version=expected_version(request), actor=request.user
        )
        consensus = self._consensus(field)
        return with_version_etag(Response(AnnotationSetSerializer(consensus).data), consensus.version)

    def _consensus(self, field: Field) -> AnnotationSet:
        consensus = (
            selectors.annotation_sets_visible_to(self.request.user)
            .filter(truth_q(with_reopened=True), field=field)
            .annotate(cell_count=Count("cells"))
            .first()
        )
        if consensus is None:
            raise NotFound(f"Field {field.pk} has no consensus yet.")
        return consensus


class AgreementView(APIView):
    """Agreement of the two blind annotations over reviewed fields: box F1, Cohen's kappa (overall, per class),
    differential differences (blast % first), per field and per pair of annotators."""

    permission_classes = [RoleAccess]
    read_roles = CLINICAL_ROLES

    @extend_schema(
        parameters=[
            OpenApiParameter(name, int, required=False, description=f"only fields of this {name}")
            for name in ("case", "smear", "field", "annotator")
        ],
        responses={200: dict},
    )
    def get(self, request: Request) -> Response:
        reviews = review_selectors.field_reviews_visible_to(request.user)
        scopes = {"case": "field__smear__case", "smear": "field__smear", "field": "field"}
        for name, lookup in scopes.items():
            if name in request.query_params:
                reviews = reviews.filter(**{lookup: _int_param(request, name)})
        if "annotator" in request.query_params:
            user_id = _int_param(request, "annotator")
            reviews = reviews.filter(Q(set_a__annotator=user_id) | Q(set_b__annotator=user_id))
        return Response(review_selectors.agreement_of(list(reviews.order_by("field_id"))))


def _int_param(request: Request, name: str) -> int:
    return parse_strict_int(request.query_params[name], name)


class ReviewSettingsView(APIView):
    """The project's double-review settings: pre-labels shown to annotators, IoU threshold of the matching."""

    permission_classes = [RoleAccess]
    read_roles = ALL_ROLES
    write_roles = frozenset({Role.ADMIN})

    @extend_schema(responses={200: ReviewSettingsSerializer})
    def get(self, request: Request) -> Response:
        return Response(ReviewSettingsSerializer(ReviewSettings.load()).data)

    @extend_schema(request=ReviewSettingsSerializer, responses={200: ReviewSettingsSerializer})
    def patch(self, request: Request) -> Response:
        changes = dict(request.data) if hasattr(request.data, "keys") else {}
        return Response(
            ReviewSettingsSerializer(review_services.review_settings_update(changes=changes, actor=request.user)).data
        )
