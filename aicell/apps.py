from django.apps import AppConfig


class AicellConfig(AppConfig):
    """Cross-cutting pieces of the platform: roles (seeded groups) and setup commands."""

    name = "aicell"
    verbose_name = "AI-cell platform"

    def ready(self) -> None:
        from django.db import models
        from rest_framework.serializers import ModelSerializer

        from aicell.api.fields import StrictCharField

        # Every model serializer's text fields take strings only (a number is a schema violation, not a code).
        for model_field in (models.CharField, models.TextField):
            ModelSerializer.serializer_field_mapping[model_field] = StrictCharField
