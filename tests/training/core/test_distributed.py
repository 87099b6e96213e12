"""Data-parallel training on gloo: two CPU rank processes train what one process trains, and only rank 0 writes."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from inference.core.checkpoints import load_checkpoint, read_payload
from training.core import distributed
from training.core.config import TrainConfig
from training.core.data import SeededSampler
from training.core.distributed import Rank, ShardedSampler
from training.core.stage_run import Progress, StageResult, _train_rank, train_stage

# GroupNorm, not BatchNorm: a crop's output does not depend on the rest of its batch, so 2 ranks x 4 crops compute
# what 1 process x 8 crops does (CPU ranks have no SyncBatchNorm). The countability stage samples class-balanced
# (the weighted draw the classifier uses too), and small_fields has an even number (38) of train crops: the ranks
# split every batch, the last one included, into equal halves without padding.
ARCH = "test_efficientnet_gn"


class Cancelled(Exception):
    pass


def _config(profile: Any, epochs: int = 2, **overrides: Any) -> TrainConfig:
    profile = dataclasses.replace(profile, countability=dataclasses.replace(profile.countability, arch=ARCH))
    overrides = {"num_threads": 1, **overrides}
    return TrainConfig(stage="countability", profile=profile, epochs=epochs, seed=3, overrides=overrides)


def _files(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def _written_under(folder: Path) -> list[str]:
    """Start recording this process's writes under `folder` (files opened for writing, renames, new folders)."""
    written: list[str] = []
    root = str(folder)
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path, mode, flags = args
            writes = any(c in mode for c in "wax+") if isinstance(mode, str) else bool((flags or 0) & write_flags)
            if writes and str(path).startswith(root):
                written.append(str(path))
        elif event in ("os.rename", "os.mkdir") and str(args[0]).startswith(root):
            written.append(str(args[0]))

    sys.addaudithook(hook)
    return written


def _train_rank_recording_writes(rank: Rank, on_progress: Any, *args: Any) -> Any:
    """`_train_rank`, failing the run when a rank other than 0 writes under the run's folder."""
    out_dir = args[2]
    written = _written_under(out_dir)
    result = _train_rank(rank, on_progress, *args)
    if not rank.is_main and written:
        raise AssertionError(f"rank {rank.index} wrote {written}")
    return result, written


@pytest.fixture(scope="module")
def single(small_fields, train_profile, tmp_path_factory) -> tuple[StageResult, Path]:
    out = tmp_path_factory.mktemp("single")
    return train_stage(_config(train_profile), small_fields, out), out


def _weights(result: StageResult, name: str = "last.pt") -> dict[str, torch.Tensor]:
    return dict(read_payload(result.checkpoints[0].parent / name, map_location="cpu")["state_dict"])


def _assert_same_run(ddp: StageResult, single: StageResult) -> None:
    a, b = _weights(ddp), _weights(single)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-3, atol=1e-4, msg=key)
    assert [row["epoch"] for row in ddp.history] == [row["epoch"] for row in single.history]
    assert [row["steps"] for row in ddp.history] == [row["steps"] for row in single.history]
    assert [row["train_loss"] for row in ddp.history] == pytest.approx(
        [r["train_loss"] for r in single.history], rel=1e-3, abs=1e-5
    )
    assert ddp.best_epochs == single.best_epochs
    assert ddp.metrics.keys() == single.metrics.keys()
    for key in ("accuracy", "roc_auc", "support"):
        assert ddp.metrics[key] == pytest.approx(single.metrics[key], abs=1e-3)


def test_two_gloo_ranks_train_what_one_process_trains_and_only_rank_0_writes(
    single, small_fields, train_profile, tmp_path
):
    single_result, single_dir = single
    progress: list[Progress] = []
    result, written = distributed.launch(
        2,
        torch.device("cpu"),
        _train_rank_recording_writes,
        (_config(train_profile), list(small_fields), tmp_path, "snap"),
        on_progress=progress.append,
    )
    _assert_same_run(result, single_result)
    # Rank 0 wrote the checkpoints (rank 1 writing anything would have failed the run), the same files as one process.
    assert any(path.endswith(".tmp") for path in written)
    assert _files(tmp_path) == _files(single_dir)
    assert [path.name for path in result.checkpoints] == ["best.pt"]
    # Rank 0's progress reached the parent, epoch by epoch.
    assert [p.epoch for p in progress if "done" in p.message and p.epoch] == [1, 2, 2]


def test_a_cancelled_data_parallel_run_resumes_where_it_stopped(single, small_fields, train_profile, tmp_path):
    single_result, _ = single

    def cancel_after_epoch_1(progress: Progress) -> None:
        if progress.epoch == 1 and "done" in progress.message:
            raise Cancelled

    with pytest.raises(Cancelled):
        train_stage(_config(train_profile), small_fields, tmp_path, on_progress=cancel_after_epoch_1, nproc=2)
    last = next(tmp_path.rglob("last.pt"))
    assert load_checkpoint(last).epoch in (1, 2)  # rank 0 may have finished epoch 2 before the parent stopped it
    resumed = train_stage(_config(train_profile), small_fields, tmp_path, nproc=2)
    _assert_same_run(resumed, single_result)


def test_a_failing_rank_fails_the_run_with_its_own_error(small_fields, train_profile, tmp_path):
    train_stage(_config(train_profile, epochs=1), small_fields, tmp_path)
    with pytest.raises(ValueError, match="other settings"):
        train_stage(_config(train_profile, epochs=3), small_fields, tmp_path, nproc=2)


def test_rank_0s_clock_stops_every_rank_at_the_same_step(small_fields, train_profile, tmp_path):
    result = train_stage(_config(train_profile, epochs=50, time_limit_s=0.01), small_fields, tmp_path, nproc=2)
    assert [row["steps"] for row in result.history] == [1]
    assert result.best_epochs == [1]


def test_shards_deal_the_epoch_round_robin_and_pad_it():
    weights = [1.0, 1.0, 4.0, 0.5, 2.0, 1.0, 1.0]
    epoch = list(SeededSampler(7, seed=5, weights=weights))
    shards = [list(ShardedSampler(SeededSampler(7, seed=5, weights=weights), 7, Rank(i, 2, i))) for i in (0, 1)]
    assert [len(s) for s in shards] == [4, 4]
    assert [pair for step in zip(*shards, strict=True) for pair in step] == [*epoch, epoch[0]]
    assert distributed.rank_batch_size(8, Rank(0, 2, 0)) == 4
    assert distributed.rank_batch_size(5, Rank(0, 2, 0)) == 3


def test_nproc_is_checked(small_fields, train_profile, tmp_path):
    with pytest.raises(ValueError, match="nproc must be >= 1"):
        train_stage(_config(train_profile), small_fields, tmp_path / "x", nproc=0)
    assert not (tmp_path / "x").exists()
    assert distributed.resolve_nproc(None, torch.device("cpu")) == 1


def _sum_of_ranks(rank: Rank, on_progress: Any) -> int:
    import torch.distributed as dist

    total = torch.tensor([rank.index + 1])
    dist.all_reduce(total)
    return int(total.item())


def _launch_in(queue: Any) -> None:
    queue.put(distributed.launch(2, torch.device("cpu"), _sum_of_ranks, ()))


def test_a_daemonic_process_like_a_celery_prefork_worker_can_launch_the_ranks():
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    queue = context.SimpleQueue()
    worker = context.Process(target=_launch_in, args=(queue,), daemon=True)
    worker.start()
    worker.join(timeout=300)
    assert worker.exitcode == 0
    assert queue.get() == 3


def _ranks_of(pid: int) -> list[int]:
    """The spawned children of a process (Linux /proc)."""
    ranks = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid and b"spawn_main" in command:
            ranks.append(int(stat.parent.name))
    return ranks


def test_a_second_host_joins_with_the_command_line_and_the_run_is_the_same(
    single, small_fields, train_profile, tmp_path, monkeypatch
):
    # Two "hosts" on this machine, one rank each: node 0 is train_stage, node 1 the joining command.
    port = str(distributed._free_port())
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port}
    command = [sys.executable, "-m", "training.core.distributed", "--nnodes", "2", "--node-rank", "1"]
    joiner = subprocess.Popen([*command, "--nproc-per-node", "1", "--device", "cpu"], env=env)
    try:
        monkeypatch.setenv("AICELL_TRAIN_NNODES", "2")
        monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
        monkeypatch.setenv("MASTER_PORT", port)
        result = train_stage(_config(train_profile), small_fields, tmp_path / "a", nproc=1)
        # The joining host serves the job's next stage too (a new rendezvous on the same port).
        again = train_stage(_config(train_profile, epochs=1), small_fields, tmp_path / "b", nproc=1)
        assert joiner.poll() is None
        deadline = time.monotonic() + 60
        while not (waiting := _ranks_of(joiner.pid)) and time.monotonic() < deadline:
            time.sleep(0.2)  # its ranks for the next run start once this run's have ended
        assert waiting
    finally:
        joiner.terminate()
        joiner.wait(timeout=60)
    assert not [pid for pid in waiting if Path(f"/proc/{pid}").exists()], "a stopped host leaves no rank behind"
    _assert_same_run(result, single[0])
    assert [row["epoch"] for row in again.history] == [1]
    monkeypatch.delenv("MASTER_PORT")
    with pytest.raises(ValueError, match="MASTER_PORT"):
        train_stage(_config(train_profile), small_fields, tmp_path / "x", nproc=1)
