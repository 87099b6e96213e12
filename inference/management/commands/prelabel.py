"""python manage.py prelabel [--case CODE ...] [--all] [--wait]"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from aicell.errors import DomainError
from inference.models import PrelabelJob, PrelabelTrigger
from inference.services import fields_to_prelabel, prelabel_job_create


class Command(BaseCommand):
    help = "Queue pre-labelling with the active models; --wait shows a progress bar until the job ends."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--case", action="append", default=[], metavar="CODE", help="only fields of this case")
        parser.add_argument("--all", action="store_true", help="also fields the active model already pre-labelled")
        parser.add_argument("--wait", action="store_true", help="follow the job until it ends")

    def handle(self, *args: Any, **options: Any) -> None:
        fields = fields_to_prelabel(case_codes=options["case"], everything=options["all"])
        try:
            job = prelabel_job_create(fields=fields, trigger=PrelabelTrigger.MANUAL)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Pre-label job {job.pk}: {job.field_count} fields queued.")
        if options["wait"]:
            job = self._follow(job)
            self.stdout.write(f"Job {job.pk} {job.status}: {job.message}")
            if job.status != "succeeded":
                raise CommandError(job.error or job.message)

    def _follow(self, job: PrelabelJob) -> PrelabelJob:
        with tqdm(total=job.field_count, unit="field", desc=f"job {job.pk}") as bar:
            while True:
                job.refresh_from_db()
                bar.n = job.done_count + job.failed_count
                bar.set_postfix(failed=job.failed_count)
                bar.refresh()
                if job.is_finished:
                    return job
                time.sleep(1)
