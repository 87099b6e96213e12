"""Pre-label jobs, the review queue and its strategies: thin adapters over services and selectors."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from aicell.api.fields import parse_strict_int
from aicell.api.parsers import JSONParser
from aicell.api.permissions import RoleAccess
from aicell.api.schema import ApiErrorSerializer
from aicell.errors import FieldError, ValidationFailed
from aicell.jobs import job_request_cancel
from aicell.roles import LAB_MANAGERS, Role, has_role
from annotations.models import Case
from annotations.review.selectors import cell_reviews_visible_to
from annotations.review.serializers import CellReviewSerializer, ConflictSerializer
from inference import selectors, services
from inference.core.selection import REVIEW_STRATEGIES
from inference.models import PrelabelJob, PrelabelTrigger
from inference.serializers import (
    PrelabelItemSerializer,
    PrelabelJobSerializer,
    PrelabelRequestSerializer,
    ReviewBatchSerializer,
    ReviewCellSerializer,
    ReviewDecisionSerializer,
    ReviewQueueQuerySerializer,
    ReviewReleasedSerializer,
    ReviewReleaseSerializer,
    ReviewRenewSerializer,
    ReviewStrategySerializer,
)


class PrelabelJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = PrelabelJobSerializer
    permission_classes = [RoleAccess]
    read_roles = LAB_MANAGERS
    write_roles = LAB_MANAGERS
    filterset_fields = ["status", "trigger"]
    ordering_fields = ["created_at"]

    def get_queryset(self) -> QuerySet[PrelabelJob]:
        return PrelabelJob.objects.all()

    @extend_schema(request=PrelabelRequestSerializer, responses={202: PrelabelJobSerializer})
    def create(self, request: Request) -> Response:
        """Queue pre-labelling of fields (by ids, by case, or all new ones) with the active models."""
        body = PrelabelRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        fields = services.fields_to_prelabel(everything=data["everything"] or "field_ids" in data)
        if "field_ids" in data:
            fields = fields.filter(pk__in=data["field_ids"])
        if "case" in data:
            if not Case.objects.filter(pk=data["case"]).exists():
                raise ValidationFailed(f"Case {data['case']} does not exist.", field="case")
            fields = fields.filter(smear__case_id=data["case"])
        job = services.prelabel_job_create(fields=fields, trigger=PrelabelTrigger.MANUAL, actor=request.user)
        return Response(PrelabelJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        parameters=[OpenApiParameter("status", str, required=False)], responses={200: PrelabelItemSerializer(many=True)}
    )
    @action(detail=True, methods=["get"], filterset_fields=[], ordering_fields=[])
    def items(self, request: Request, pk: str) -> Response:
        """Each field of the job with its status and, for a failure, the reason."""
        items = self.get_object().items.all()
        if "status" in request.query_params:
            items = items.filter(status=request.query_params["status"])
        page = self.paginate_queryset(items)
        return self.get_paginated_response(PrelabelItemSerializer(page, many=True).data)

    @extend_schema(request=None, responses={200: PrelabelJobSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        job = job_request_cancel(PrelabelJob, self.get_object().pk)
        return Response(PrelabelJobSerializer(job).data)


REVIEWERS = frozenset({Role.ANNOTATOR, Role.ADJUDICATOR})


class ReviewQueueView(APIView):
    """Your batch of queued cells (held for you while the page renews it), most uncertain first per class;
    adjudicators also get the escalated conflicts of queued cells, first."""

    permission_classes = [RoleAccess]
    read_roles = REVIEWERS

    @extend_schema(parameters=[ReviewQueueQuerySerializer], responses={200: ReviewBatchSerializer})
    def get(self, request: Request) -> Response:
        query = ReviewQueueQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data: dict[str, Any] = query.validated_data
        if data["strategy"] not in REVIEW_STRATEGIES:
            raise ValidationFailed(
                f"Unknown strategy {data['strategy']!r}; valid strategies: {', '.join(REVIEW_STRATEGIES)}.",
                errors=[FieldError("strategy", f"must be one of {', '.join(REVIEW_STRATEGIES)}")],
            )
        batch = services.review_claims_take(
            request.user,
            selectors.ReviewQueueRequest(
                strategy=data["strategy"],
                case_id=data.get("case"),
                cell_class=data.get("cell_class"),
                limit=data["limit"],
                balance_classes=data["balance"],
                max_per_field=data["max_per_field"],
            ),
        )
        conflicts = (
            selectors.escalated_cell_conflicts(request.user)[:50] if has_role(request.user, Role.ADJUDICATOR) else []
        )
        body = {
            "cells": ReviewCellSerializer(batch.cells, many=True).data,
            "conflicts": ConflictSerializer(conflicts, many=True, context={"request": request}).data,
            "decided_today": selectors.decided_today(request.user),
            "expires_at": serializers.DateTimeField().to_representation(batch.expires_at),
        }
        return Response(body)


class ReviewQueueRenewView(APIView):
    """The page is still open: keep holding my batch."""

    permission_classes = [RoleAccess]
    read_roles = write_roles = REVIEWERS

    @extend_schema(request=None, responses={200: ReviewRenewSerializer})
    def post(self, request: Request) -> Response:
        held, expires_at = services.review_claims_renew(request.user)
        return Response(ReviewRenewSerializer({"held": held, "expires_at": expires_at}).data)


class ReviewQueueReleaseView(APIView):
    """Give cells back to the queue at once: skipped ones, or all of them when I leave the page."""

    permission_classes = [RoleAccess]
    read_roles = write_roles = REVIEWERS
    # A JSON object only (the page sends one): a form body's parts that are not `cells` would read as "release all".
    parser_classes = [JSONParser]

    @extend_schema(request=ReviewReleaseSerializer, responses={200: ReviewReleasedSerializer})
    def post(self, request: Request) -> Response:
        body = ReviewReleaseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        released = services.review_claims_release(request.user, body.validated_data.get("cells"))
        return Response({"released": released})


class ReviewDecisionView(APIView):
    """Decide a queued cell you hold (blind: you see the other decision only once both decided)."""

    permission_classes = [RoleAccess]
    read_roles = write_roles = REVIEWERS

    @extend_schema(request=ReviewDecisionSerializer, responses={201: CellReviewSerializer, 404: ApiErrorSerializer})
    def post(self, request: Request) -> Response:
        body = ReviewDecisionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        review = services.review_decision_create(user=request.user, cell_id=data.pop("cell"), data=data)
        return Response(self._read(request, review.pk), status=status.HTTP_201_CREATED)

    @staticmethod
    def _read(request: Request, review_id: int) -> Any:
        review = cell_reviews_visible_to(request.user).prefetch_related("conflicts").get(pk=review_id)
        return CellReviewSerializer(review, context={"request": request}).data


class ReviewDecisionWithdrawView(APIView):
    """Undo: take back my decision on a cell while the other reviewer has not decided it (the cell is mine again)."""

    permission_classes = [RoleAccess]
    read_roles = write_roles = REVIEWERS

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, cell_id: int) -> Response:
        services.review_decision_withdraw(user=request.user, cell_id=parse_strict_int(cell_id, "cell_id"))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReviewStrategiesView(APIView):
    """The review queue's strategies, in the order the UI lists them; `default` marks the queue's default."""

    permission_classes = [RoleAccess]
    read_roles = frozenset({Role.ANNOTATOR, Role.ADJUDICATOR, Role.ADMIN})

    @extend_schema(responses={200: ReviewStrategySerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(ReviewStrategySerializer(REVIEW_STRATEGIES.values(), many=True).data)
