"""python manage.py pretrain --stage classifier|countability|detector-backbone [--profile cpu] [--epochs N]
[--name NAME] [--seed S] [--time-limit SECONDS] [--exclude-split val ...] [--wait | --follow] [--json]"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aicell.errors import DomainError
from aicell.models import JobStatus
from annotations.management.commands.export_coco import domain_error_text
from annotations.splits import SPLITS
from training.management.commands.train import follow_with_bar, run_with_bar
from training.models import PretrainingJob
from training.pretraining import DEFAULT_EPOCHS, PRETRAIN_STAGES, pretraining_job_create, pretraining_job_run


class Command(BaseCommand):
    help = (
        "Learn starting points for a stage's networks by self-supervised pretraining (SimCLR) on every stored field "
        "and box, labelled or not, and register them (kind self_supervised). Without --wait the job is queued for "
        "a worker of the gpu queue; --wait runs it here with a progress bar; --follow queues it and follows it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--stage", required=True, choices=PRETRAIN_STAGES)
        parser.add_argument("--profile", default=None, help="model profile (default AICELL_PROFILE)")
        parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
        parser.add_argument("--name", default=None, help="starting point name (default ssl-<profile>-<stage>-<job>)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--time-limit", type=float, default=None, help="seconds for the whole stage")
        parser.add_argument(
            "--exclude-split",
            action="append",
            default=[],
            choices=SPLITS,
            help="leave out the fields of this split's patients (e.g. keep val unseen for a benchmark)",
        )
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--wait", action="store_true", help="run the job in this process, with a progress bar")
        mode.add_argument("--follow", action="store_true", help="queue the job and follow the worker's progress")
        parser.add_argument("--json", action="store_true", help="print the finished job's result as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            job = pretraining_job_create(
                stage=options["stage"],
                profile=options["profile"],
                name=options["name"],
                epochs=options["epochs"],
                seed=options["seed"],
                time_limit_s=options["time_limit"],
                exclude_splits=options["exclude_split"],
                enqueue=not options["wait"],
            )
        except DomainError as exc:
            raise CommandError(domain_error_text(exc)) from exc
        self.stderr.write(f"Pretraining job {job.pk}: {job.stage} ({job.profile}) as {job.name!r} {job.status}.")
        if not (options["wait"] or options["follow"]):
            if options["json"]:
                self.stdout.write(json.dumps({"pretraining_job": job.pk, "status": job.status}))
            return
        if options["wait"]:
            job = run_with_bar(self, job, lambda listener: pretraining_job_run(job.pk, listener=listener), _postfix)
        else:
            job = follow_with_bar(job, _postfix)
        if options["json"]:
            summary = {"pretraining_job": job.pk, "status": job.status, "error": job.error, "timings": job.timings}
            self.stdout.write(json.dumps({**summary, **job.result}))
        else:
            for point in job.result.get("starting_points", []):
                self.stdout.write(f"starting point {point['name']} ({point['arch']}): loss {point['loss']:.4f}")
            self.stdout.write(f"Job {job.pk} {job.status}: {job.message}")
        if job.status != JobStatus.SUCCEEDED:
            raise CommandError(job.error or job.message)


def _postfix(job: PretrainingJob) -> str:
    parts = [job.stage]
    if job.epoch is not None:
        parts.append(f"epoch {job.epoch}/{job.epochs}")
    if job.loss is not None:
        parts.append(f"loss {job.loss:.4f}")
    return " ".join(parts)
