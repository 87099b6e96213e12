from typing import Any

from django.apps import AppConfig
from django.db import connections
from django.db.models.signals import post_migrate


def _reinstall_database_guards(sender: AppConfig, using: str = "default", **kwargs: Any) -> None:
    connection = connections[using]
    with connection.cursor() as cursor:
        from annotations import db_guards

        db_guards.install(cursor, connection.vendor)


class AnnotationsConfig(AppConfig):
    name = "annotations"
    verbose_name = "Fields and annotations"

    def ready(self) -> None:
        from annotations.review.services import field_review_start_if_ready
        from annotations.services import ANNOTATION_SET_SUBMITTED_HOOKS

        post_migrate.connect(_reinstall_database_guards, sender=self)
        ANNOTATION_SET_SUBMITTED_HOOKS.append(field_review_start_if_ready)
