"""URL map: the REST API under /api/v1/, its schema and docs, the Django admin, and the browser UI at /."""

from __future__ import annotations

from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authtoken.views import obtain_auth_token
from rest_framework.routers import DefaultRouter

from aicell.api.users import HomeView, UserViewSet
from aicell.api.views import HealthView, SessionView
from annotations import views as annotation_views
from annotations.review import views as review_views
from inference import views as inference_views
from training import views as training_views

router = DefaultRouter()
# Both /api/v1/fields and /api/v1/fields/ resolve (no redirect that would turn a POST into a GET).
router.trailing_slash = "/?"
router.register("patients", annotation_views.PatientViewSet, basename="patient")
router.register("cases", annotation_views.CaseViewSet, basename="case")
router.register("smears", annotation_views.SmearViewSet, basename="smear")
# Review's actions of one field first: the API root lists each prefix once, with the last viewset registered for it.
router.register("fields", review_views.FieldReviewViewSet, basename="field-review")
router.register("fields", annotation_views.FieldViewSet, basename="field")
router.register("cell-classes", annotation_views.CellClassViewSet, basename="cell-class")
router.register("annotation-sets", annotation_views.AnnotationSetViewSet, basename="annotation-set")
router.register("cells", annotation_views.CellViewSet, basename="cell")
router.register("prelabel-jobs", inference_views.PrelabelJobViewSet, basename="prelabel-job")
router.register("assignments", review_views.AssignmentViewSet, basename="assignment")
router.register("conflicts", review_views.ConflictViewSet, basename="conflict")
router.register("cell-reviews", review_views.CellReviewViewSet, basename="cell-review")
router.register("rule-sets", annotation_views.RuleSetViewSet, basename="rule-set")
router.register("exports", annotation_views.ExportViewSet, basename="export")
router.register("imports", annotation_views.ImportViewSet, basename="import")
router.register("training-jobs", training_views.TrainingJobViewSet, basename="training-job")
router.register("model-versions", training_views.ModelVersionViewSet, basename="model-version")
router.register("dataset-snapshots", training_views.DatasetSnapshotViewSet, basename="dataset-snapshot")
router.register("training-schedules", training_views.TrainingScheduleViewSet, basename="training-schedule")
router.register("pretraining-jobs", training_views.PretrainingJobViewSet, basename="pretraining-job")
router.register("starting-points", training_views.StartingPointViewSet, basename="starting-point")
router.register("users", UserViewSet, basename="user")

api_v1: list[URLPattern | URLResolver] = [
    path("health", HealthView.as_view(), name="health"),
    path("auth/session", SessionView.as_view(), name="auth-session"),
    path("auth/token", obtain_auth_token, name="auth-token"),
    path("home", HomeView.as_view(), name="home"),
    path("review-queue", inference_views.ReviewQueueView.as_view(), name="review-queue"),
    path("review-queue/renew", inference_views.ReviewQueueRenewView.as_view(), name="review-queue-renew"),
    path("review-queue/release", inference_views.ReviewQueueReleaseView.as_view(), name="review-queue-release"),
    path("review-queue/decisions", inference_views.ReviewDecisionView.as_view(), name="review-queue-decisions"),
    path(
        "review-queue/decisions/<int:cell_id>",
        inference_views.ReviewDecisionWithdrawView.as_view(),
        name="review-queue-decision",
    ),
    path("review-strategies", inference_views.ReviewStrategiesView.as_view(), name="review-strategies"),
    path("agreement", review_views.AgreementView.as_view(), name="agreement"),
    path("review-settings", review_views.ReviewSettingsView.as_view(), name="review-settings"),
    path("", include(router.urls)),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api-auth/", include("rest_framework.urls")),
    path("admin/", admin.site.urls),
    path("", include("frontend.urls")),
]

handler404 = "aicell.views.not_found"
