"""python manage.py train --stage detector|countability|classifier|all --profile cpu|paper [--epochs N]
[--promote auto|never|force] [--seed S] [--override KEY=VALUE ...] [--nproc N] [--wait | --follow] [--json]"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from aicell.errors import DomainError
from aicell.jobs import job_cancelled
from aicell.models import Job, JobStatus
from annotations.management.commands.export_coco import domain_error_text
from training.core.overrides import OVERRIDES
from training.core.stages import STAGES
from training.jobs import ALL_STAGES, training_job_create, training_job_run
from training.models import PromoteMode, TrainingJob


def _override(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or key not in OVERRIDES:
        raise CommandError(f"--override takes KEY=VALUE with KEY one of {', '.join(OVERRIDES)}, not {text!r}")
    try:
        value: Any = json.loads(raw)  # numbers, true/false, [lists]
    except ValueError:
        value = raw
    return key, value


class Command(BaseCommand):
    help = (
        "Create a training job like POST /api/v1/training-jobs. Without --wait it is queued for a worker of the gpu "
        "queue; --wait runs it here in this process with a progress bar (no worker needed); --follow queues it "
        "and follows the worker's progress."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--stage", default=ALL_STAGES, choices=[*STAGES, ALL_STAGES])
        parser.add_argument("--profile", default=None, help="model profile (default AICELL_PROFILE)")
        parser.add_argument("--epochs", type=int, default=None, help="default: the profile's")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--promote", default=PromoteMode.AUTO, choices=PromoteMode.values)
        parser.add_argument(
            "--override", action="append", default=[], metavar="KEY=VALUE", help=f"one of {', '.join(OVERRIDES)}"
        )
        parser.add_argument(
            "--nproc",
            type=int,
            default=None,
            help="train each stage data-parallel in N processes, one GPU each on CUDA (torch.distributed DDP; gloo on "
            "CPU); default AICELL_TRAIN_NPROC (0: every visible GPU, one process on CPU)",
        )
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--wait", action="store_true", help="run the job in this process, with a progress bar")
        mode.add_argument("--follow", action="store_true", help="queue the job and follow the worker's progress")
        parser.add_argument("--json", action="store_true", help="print the finished job's result as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        overrides = dict(_override(text) for text in options["override"])
        try:
            job = training_job_create(
                stages=options["stage"],
                profile=options["profile"],
                epochs=options["epochs"],
                seed=options["seed"],
                promote=options["promote"],
                overrides=overrides,
                nproc=options["nproc"],
                enqueue=not options["wait"],
            )
        except DomainError as exc:
            raise CommandError(domain_error_text(exc)) from exc
        self.stderr.write(f"Training job {job.pk}: {', '.join(job.stages)} ({job.profile}) {job.status}.")
        if not (options["wait"] or options["follow"]):
            if options["json"]:
                self.stdout.write(json.dumps({"training_job": job.pk, "status": job.status}))
            return
        if options["wait"]:
            job = run_with_bar(self, job, lambda listener: training_job_run(job.pk, listener=listener), _postfix)
        else:
            job = follow_with_bar(job, _postfix)
        self._report(job, options["json"])

    def _report(self, job: TrainingJob, as_json: bool) -> None:
        versions = job.model_versions.order_by("id")
        if as_json:
            self.stdout.write(
                json.dumps(
                    {
                        "training_job": job.pk,
                        "status": job.status,
                        "error": job.error,
                        "dataset_snapshot": job.dataset_snapshot_id,
                        "timings": job.timings,
                        "model_versions": [
                            {
                                "id": v.pk,
                                "stage": v.stage,
                                "status": v.status,
                                "reason": v.status_reason,
                                "metrics": v.metrics,
                            }
                            for v in versions
                        ],
                    }
                )
            )
        else:
            for version in versions:
                self.stdout.write(f"{version.stage}: v{version.pk} {version.status} - {version.status_reason}")
            self.stdout.write(f"Job {job.pk} {job.status}: {job.message}")
        if job.status != JobStatus.SUCCEEDED:
            raise CommandError(job.error or job.message)


J = TypeVar("J", bound=Job)


def run_with_bar(
    command: BaseCommand, job: J, run: Callable[[Callable[[J], None]], Any], postfix: Callable[[J], str]
) -> J:
    """Run a job in this process (`run(listener)`) with a progress bar; Ctrl-C cancels it."""
    with tqdm(total=100, unit="%", desc=f"job {job.pk}", bar_format="{l_bar}{bar}| {n:.0f}/100 [{elapsed}]") as bar:

        def show(state: J) -> None:
            bar.n = state.progress
            bar.set_postfix_str(postfix(state), refresh=False)
            bar.refresh()

        try:
            run(show)
        except KeyboardInterrupt:
            job.refresh_from_db()
            if not job.is_finished:
                job_cancelled(job)
            raise
        except Exception:  # job_run recorded the failure on the job (reported after); show where it happened
            command.stderr.write(traceback.format_exc())
    job.refresh_from_db()
    return job


def follow_with_bar(job: J, postfix: Callable[[J], str]) -> J:
    """Follow a queued job's progress (run by a worker) until it ends."""
    with tqdm(total=100, unit="%", desc=f"job {job.pk}", bar_format="{l_bar}{bar}| {n:.0f}/100 [{elapsed}]") as bar:
        while True:
            job.refresh_from_db()
            bar.n = job.progress
            bar.set_postfix_str(postfix(job), refresh=False)
            bar.refresh()
            if job.is_finished:
                return job
            time.sleep(2)


def _postfix(job: TrainingJob) -> str:
    parts = [job.current_stage or "snapshot"]
    if job.epoch is not None:
        parts.append(f"epoch {job.epoch}/{job.epochs}")
    if job.loss is not None:
        parts.append(f"loss {job.loss:.4f}")
    return " ".join(parts)
