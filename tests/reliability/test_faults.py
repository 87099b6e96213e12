"""Faults injected into a running stack (real gunicorn, real Celery worker processes, own Redis, PostgreSQL behind a
proxy): a worker killed with SIGKILL in the middle of a task and of a long job, Redis crashed and restarted while
tasks are queued, PostgreSQL refusing connections for a moment. What must hold: nothing lost, nothing duplicated,
no job left "running", no request half-applied, and the platform recovers without anyone restarting it.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from aicell.celery import app
from aicell.models import Job, JobStatus
from aicell.roles import Role
from annotations.models import AnnotationKind, AnnotationSet, AuditEvent, Cell, Field
from inference.models import ItemStatus, PrelabelItem, PrelabelJob
from tests.factories import AnnotationSetFactory, CellFactory, FieldFactory
from tests.reliability.conftest import Stack, not_on_embedded, on_embedded_default
from tests.reliability.figures import full_mode, record_figure
from tests.reliability.stack import wait_until
from training.models import PretrainingJob, TrainingJob

pytestmark = [pytest.mark.services, pytest.mark.worker, pytest.mark.slow]

SECTION = "faults"


def make_fields(count: int) -> list[Field]:
    return [FieldFactory(width=160, height=120) for _ in range(count)]


def prelabel_via_api(stack: Stack, server: Any, token: str, fields: list[Field]) -> PrelabelJob:
    status, body, _ = server.request("POST", "/api/v1/prelabel-jobs", token, {"field_ids": [f.pk for f in fields]})
    assert status == 202, body
    return PrelabelJob.objects.get(pk=body["id"])


def assert_prelabelled_once(job: PrelabelJob, fields: list[Field], classifier: Any) -> None:
    """The job finished with every field done, and each field has exactly one prediction set of the classifier
    version, whose cells are all there (no half-stored set, no duplicate)."""
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, (job.status, job.error, job.message)
    assert (job.done_count, job.failed_count) == (len(fields), 0)
    items = list(PrelabelItem.objects.filter(job=job))
    assert [item.status for item in items] == [ItemStatus.SUCCEEDED] * len(fields)
    for field in fields:
        (prediction,) = AnnotationSet.objects.filter(field=field, kind=AnnotationKind.PREDICTION)
        assert prediction.model_version_id == classifier.pk
        item = next(i for i in items if i.field_id_at_start == field.pk)
        assert prediction.cells.count() == item.cell_count >= 1
        field.refresh_from_db()
        assert field.status == "prelabelled"


def wait_finished(job: Job, timeout: float) -> Job:
    def finished() -> bool:
        job.refresh_from_db()
        return job.is_finished

    wait_until(finished, timeout, f"{type(job).__name__} {job.pk} to finish (now {job.status}: {job.message})")
    return job


def started_items(job: PrelabelJob) -> list[PrelabelItem]:
    return list(PrelabelItem.objects.filter(job=job, attempts__gte=1, status=ItemStatus.QUEUED))


def test_a_worker_killed_mid_prelabel_task_is_redelivered_and_the_result_is_complete_not_duplicated(
    stack: Stack, stack_models: dict[str, Any], make_user: Any, token_of: Any
) -> None:
    if on_embedded_default():
        not_on_embedded(
            "worker killed mid pre-label task: redelivered",
            "the file-system broker hands a message out once (no acknowledgement, no visibility timeout); the job of "
            "a killed worker is ended by the reaper instead (tested)",
        )
    fields = make_fields(6 if full_mode() else 4)
    chunk = len(fields) // 2
    server = stack.gunicorn(workers=1, AICELL_PRELABEL_CHUNK=str(chunk))
    first = stack.worker("first")
    job = prelabel_via_api(stack, server, token_of(make_user(Role.ADJUDICATOR)), fields)

    # The first chunk's items are taken (attempt 1) before the pipeline loads and runs: kill -9 in that window.
    in_flight = wait_until(lambda: started_items(job), 120, "the first pre-label task to start")
    first.kill9()
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
    assert job.done_count == 0, "the task finished before it could be killed"

    stack.wait_for_worker(stack.worker("second"))
    wait_finished(job, 180)
    assert_prelabelled_once(job, fields, stack_models["classifier"])
    # The killed chunk ran again on the second worker (acks_late + visibility timeout), once more only.
    for item in PrelabelItem.objects.filter(pk__in=[i.pk for i in in_flight]):
        assert item.attempts >= 2, item
    record_figure(SECTION, "worker killed mid pre-label task: redelivered, complete, no duplicate", "survived")


# --- a worker killed in the middle of a long job ------------------------------------------------------------------


@dataclass(frozen=True)
class JobKind:
    """How to start one kind of long job through the API and find its row; one instance per job kind."""

    name: str
    model: type[Job]
    start: Callable[[Stack, Any, str], Job]
    queue: str = "gpu"


def _start_prelabel(stack: Stack, server: Any, token: str) -> Job:
    return prelabel_via_api(stack, server, token, make_fields(2))


def _start_training(stack: Stack, server: Any, token: str) -> Job:
    """A classifier run on a few tiny truth fields, with epochs enough to be killed in the middle."""
    from tests.models_on_disk import TEST_PROFILE
    from tests.training.platform_data import truth_field

    for index, split in enumerate(("train", "train", "train", "val", "test")):
        truth_field(f"FAULT-P{index}", [(8, 8, 30, 30, 12, True), (52, 52, 30, 30, 0, True)], split=split)
    body = {"stage": "classifier", "profile": TEST_PROFILE, "epochs": 500, "promote": "never"}
    status, answer, _ = server.request("POST", "/api/v1/training-jobs", token, body)
    assert status == 202, answer
    return TrainingJob.objects.get(pk=answer["id"])


def _start_pretraining(stack: Stack, server: Any, token: str) -> Job:
    """A self-supervised classifier run on a few tiny fields (the `pretrain` command's service; there is no API for
    it), its task sent to this test's broker, with epochs enough to be killed in the middle."""
    from tests.models_on_disk import TEST_PROFILE
    from tests.training.platform_data import truth_field
    from training.pretraining import pretraining_job_create

    for index in range(3):
        truth_field(f"FAULT-SSL{index}", [(8, 8, 30, 30, 12, True), (52, 52, 30, 30, 0, True)], split="train")
    job = pretraining_job_create(stage="classifier", profile=TEST_PROFILE, epochs=500, enqueue=False)
    with broker_connection(stack) as broker:
        app.send_task("training.run_pretraining_job", args=[job.pk], queue="gpu", connection=broker)
    return job


JOB_KINDS = [
    JobKind("prelabel", PrelabelJob, _start_prelabel),
    JobKind("training", TrainingJob, _start_training),
    JobKind("pretraining", PretrainingJob, _start_pretraining),
]


def broker_connection(stack: Stack) -> Any:
    """A connection to the stack's broker: its Redis, or on the embedded default its file-system broker's folder."""
    if stack.redis is not None:
        return app.connection_for_write(stack.redis.url(0))
    from kombu import Connection

    # Made here as the settings make them in each process: the workers of the stack may not have started yet.
    folder, control = stack.broker_dir / "queue", stack.broker_dir / "control"
    for path in (folder, control):
        path.mkdir(parents=True, exist_ok=True)
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder), "control_folder": str(control)}
    return Connection("filesystem://localhost//", transport_options=options)


def broker_is_drained(stack: Stack, queue: str) -> bool:
    """No message waits for the queue (Redis: none queued or unacknowledged; file-system broker: no file left)."""
    if stack.redis is None:
        folder = stack.broker_dir / "queue"
        return not folder.exists() or not any(folder.iterdir())
    import redis

    client = redis.Redis.from_url(stack.redis.url(0))
    try:
        return client.llen(queue) == 0 and client.hlen("unacked") == 0
    finally:
        client.close()


@pytest.mark.parametrize("kind", JOB_KINDS, ids=lambda kind: kind.name)
def test_a_job_whose_worker_is_killed_ends_failed_by_the_reaper_never_left_running(
    kind: JobKind, stack: Stack, stack_models: dict[str, Any], make_user: Any, token_of: Any
) -> None:
    stale_after = 3
    server = stack.gunicorn(workers=1, AICELL_PRELABEL_CHUNK="1")
    runner = stack.worker("runner", queues=kind.queue, AICELL_JOB_STALE_AFTER=str(stale_after))
    reaper = stack.worker("reaper", queues="default", AICELL_JOB_STALE_AFTER=str(stale_after))
    job = kind.start(stack, server, token_of(make_user(Role.ADMIN)))
    wait_until(lambda: kind.model._default_manager.get(pk=job.pk).status == JobStatus.RUNNING, 120, "the job to run")
    runner.kill9()
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING

    # The stale-job reaper (beat runs it every minute) marks it failed once its heartbeat is older than the limit.
    time.sleep(stale_after + 0.5)
    stack.wait_for_worker(reaper)
    with broker_connection(stack) as broker:  # not the settings' broker: this test's
        app.send_task("aicell.fail_stale_jobs", queue="default", connection=broker)
    wait_until(lambda: kind.model._default_manager.get(pk=job.pk).is_finished, 60, "the reaper to end the job")
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "stopped responding" in job.error

    # The killed task comes back (acks_late: the broker redelivers it after the visibility timeout) to a new worker:
    # it must not revive the failed job.
    stack.wait_for_worker(stack.worker("successor", queues=kind.queue))
    wait_until(lambda: broker_is_drained(stack, kind.queue), 300, "the redelivered task to be consumed")
    time.sleep(1)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert not kind.model._default_manager.filter(status=JobStatus.RUNNING).exists()
    engine = " (embedded default, file-system broker)" if on_embedded_default() else ""
    record_figure(SECTION, f"worker killed mid {kind.name} job{engine}: failed by the reaper, not revived", "survived")


# --- Redis restarted while tasks are queued ------------------------------------------------------------------------


def test_tasks_queued_when_redis_restarts_still_run_and_the_worker_reconnects(
    stack: Stack, stack_models: dict[str, Any], make_user: Any, token_of: Any
) -> None:
    if on_embedded_default():
        not_on_embedded("redis crashed and restarted", "there is no Redis: the broker is a folder of files")
    fields = make_fields(6 if full_mode() else 4)
    server = stack.gunicorn(workers=1, AICELL_PRELABEL_CHUNK="1")
    worker = stack.worker("steady")
    token = token_of(make_user(Role.ADJUDICATOR))
    job = prelabel_via_api(stack, server, token, fields)
    wait_until(lambda: started_items(job), 120, "the first pre-label task to start")
    # One task runs, the others wait in the queue: crash Redis (kill -9) and bring it back on the same port.
    stack.redis.crash()
    # Meanwhile a job asked for cannot be queued: it fails at once with the reason, never waits "queued" forever.
    status, body, _ = server.request("POST", "/api/v1/prelabel-jobs", token, {"field_ids": [fields[0].pk]})
    assert status == 202, body
    assert body["status"] == JobStatus.FAILED, body
    assert "task queue is unreachable" in body["error"]
    time.sleep(1)
    stack.redis.start()
    wait_finished(job, 240)
    assert_prelabelled_once(job, fields, stack_models["classifier"])
    assert worker.alive(), "the worker died instead of reconnecting"
    assert "Connection to broker lost" in worker.log_path.read_text(errors="replace")
    record_figure(SECTION, "redis crashed and restarted with tasks queued: all ran, worker reconnected", "survived")


# --- PostgreSQL refuses connections --------------------------------------------------------------------------------


@dataclass
class Writer:
    """An annotator adding and moving cells in a loop, keeping the version it last saw."""

    server: Any
    token: str
    set_id: int
    version: int
    statuses: list[int]
    created: list[int]

    def write_once(self, rng: random.Random) -> None:
        path = f"/api/v1/annotation-sets/{self.set_id}/cells"
        box = {"x": rng.randint(0, 500), "y": rng.randint(0, 400), "width": 40, "height": 40, "cell_class": 3}
        status, body, headers = self.server.request("POST", path, self.token, box, **{"If-Match": f'"{self.version}"'})
        self.statuses.append(status)
        if status == 201:
            self.created.append(body["id"])
            self.version = int(headers["ETag"].strip('"'))
        elif status == 409:
            # The write may have been applied while its answer was lost with the connection: re-read the version.
            self.version = body["current_version"]
        else:
            assert status == 503, (status, body)


def test_postgresql_refusing_connections_answers_503_applies_nothing_half_and_recovers_by_itself(
    stack: Stack, make_user: Any, token_of: Any
) -> None:
    if on_embedded_default():
        not_on_embedded("database refusing connections", "there is no database server: SQLite is a file")
    annotator = make_user(Role.ANNOTATOR)
    own = AnnotationSetFactory(annotator=annotator, field=FieldFactory(width=640, height=480))
    CellFactory(annotation_set=own)
    start_version = own.version
    token = token_of(annotator)
    server = stack.gunicorn(workers=2, via_proxy=True)
    cells_path = f"/api/v1/annotation-sets/{own.pk}/cells"
    status, _, _ = server.request("GET", cells_path, token)
    assert status == 200

    # 1. Down: reads and writes answer 503 in the platform's error shape, with Retry-After.
    stack.proxy.refuse()
    refused = 0
    for method, body in [("GET", None), ("POST", {"x": 1, "y": 1, "width": 9, "height": 9, "version": start_version})]:
        for _ in range(3):
            status, answer, headers = server.request(method, cells_path, token, body)
            assert status == 503, (status, answer)
            assert answer["status"] == 503
            assert answer["code"] == "database_unavailable"
            assert answer["detail"]
            assert answer["errors"] == []
            assert headers["Retry-After"]
            refused += 1
    assert Cell.objects.filter(annotation_set=own).count() == 1

    # 2. Flapping while writers write: connections are cut in the middle of requests and transactions.
    stack.proxy.accept()
    writers = [Writer(server, token, own.pk, start_version, [], []) for _ in range(3)]
    stop = threading.Event()

    def write_loop(writer: Writer, seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            writer.write_once(rng)

    threads = [threading.Thread(target=write_loop, args=(w, i)) for i, w in enumerate(writers)]
    for thread in threads:
        thread.start()
    flaps = 8 if full_mode() else 4
    rng = random.Random(7)
    try:
        for _ in range(flaps):
            time.sleep(rng.uniform(0.3, 0.8))
            stack.proxy.refuse()
            time.sleep(rng.uniform(0.3, 0.8))
            stack.proxy.accept()
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)

    # 3. Recovery without a restart: the next requests succeed (broken pooled connections are replaced).
    recovered_at = time.monotonic()
    wait_until(lambda: server.request("GET", cells_path, token)[0] == 200, 30, "the API to answer again")
    recovery_s = time.monotonic() - recovered_at
    for _ in range(4):  # every gunicorn worker, whatever connection it held
        assert server.request("GET", cells_path, token)[0] == 200

    # 4. Nothing half-applied: every version step of the set is one audited cell write, every stored cell has its
    # audit event, and every write answered 201 is stored.
    own.refresh_from_db()
    events = AuditEvent.objects.filter(annotation_set_id=own.pk, action="cell.create")
    stored = set(Cell.objects.filter(annotation_set=own).values_list("pk", flat=True))
    assert own.version - start_version == events.count()
    assert set(events.values_list("entity_id", flat=True)) == stored - {c.pk for c in [own.cells.order_by("id")[0]]}
    answered = {cell_id for w in writers for cell_id in w.created}
    assert answered <= stored
    statuses = [s for w in writers for s in w.statuses]
    unavailable = statuses.count(503)
    assert unavailable > 0, "the flapping never hit a request"
    assert set(statuses) <= {201, 409, 503}
    refused += unavailable
    record_figure(SECTION, "PostgreSQL outages injected (refuse + cut connections)", 1 + flaps)
    record_figure(SECTION, "requests answered 503 during outages (never 500)", refused)
    record_figure(SECTION, "writes half-applied after outages", 0)
    record_figure(SECTION, "seconds to recover after PostgreSQL returned", round(recovery_s, 2))


def test_job_kinds_cover_every_job_model() -> None:
    """A new long-job model (training) gets its row in JOB_KINDS, so the kill test covers it."""
    from aicell.jobs import job_models

    covered = {kind.model for kind in JOB_KINDS}
    uncovered = [m._meta.label for m in job_models() if m not in covered and m._meta.app_label in {"training"}]
    assert not uncovered, f"add a JobKind for {uncovered} to JOB_KINDS"


def test_gpu_work_is_routed_to_the_gpu_queue_and_the_reaper_to_default() -> None:
    """GPU hosts consume only `gpu` (docker-compose worker-gpu): every inference and training task must go there."""
    from aicell.celery import app

    app.loader.import_default_modules()
    gpu_tasks = [name for name in app.tasks if name.split(".")[0] in {"inference", "training"}]
    assert "inference.prelabel_fields" in gpu_tasks
    for name in gpu_tasks:
        assert app.amqp.router.route({}, name, (), {})["queue"].name == "gpu", name
    assert app.amqp.router.route({}, "aicell.fail_stale_jobs", (), {})["queue"].name == "default"
