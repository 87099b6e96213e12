"""The default retraining schedule: a policy "retrain when >= 500 new truth cells" checked nightly at 02:00 by a
django-celery-beat periodic task (editable in the admin and through /api/v1/training-schedules)."""

import json

from django.conf import settings
from django.db import migrations

POLICY = "nightly"
TASK_NAME = "retrain: nightly"


def create(apps, schema_editor):
    RetrainPolicy = apps.get_model("training", "RetrainPolicy")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    policy, _ = RetrainPolicy.objects.get_or_create(name=POLICY, defaults={"min_new_cells": 500})
    if policy.periodic_task_id is None:
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute="0", hour="2", day_of_week="*", day_of_month="*", month_of_year="*", timezone=settings.TIME_ZONE
        )
        task, _ = PeriodicTask.objects.get_or_create(
            name=TASK_NAME,
            defaults={
                "task": "training.retrain_check",
                "crontab": crontab,
                "kwargs": json.dumps({"policy_id": policy.pk}),
                "enabled": True,
                "description": "Start a retraining when enough new consensus cells arrived (training.RetrainPolicy).",
            },
        )
        policy.periodic_task = task
        policy.save(update_fields=["periodic_task"])


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()
    apps.get_model("training", "RetrainPolicy").objects.filter(name=POLICY).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("training", "0002_registry_jobs_schedule"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
