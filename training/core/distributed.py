"""Data-parallel training on PyTorch's own engine: torch.distributed and DistributedDataParallel (no Django).

A stage trained with `nproc` > 1 (`training.core.stage_run.train_stage`) runs in `nproc` rank processes that
`launch` starts (torch.multiprocessing, spawn): NCCL with one GPU per rank on CUDA, gloo on CPU. Every rank builds
the same model from the same seed and DDP averages the gradients of all ranks after each backward pass. Each epoch's
order comes from the same `SeededSampler` on every rank (a permutation, or the class-balanced weighted draw) and
`ShardedSampler` deals its (index, item seed) pairs round-robin; with a per-rank batch of global batch / world size,
step k of all ranks together takes exactly the items (and augmentations) of step k of the single-process run. So a
run equals the single-process one up to the order of float sums, except for BatchNorm: on CUDA it becomes
SyncBatchNorm; on CPU (no SyncBatchNorm there) its batch statistics are each rank's own.

Rank 0 alone reads the resume checkpoint (and hands it to the others), evaluates, writes checkpoints and plots,
reports progress and returns the result. `launch` relays that progress to the caller's callback (which may raise to
cancel: the ranks are then stopped) and returns rank 0's result, so the caller -- a Django job -- writes to the
database as it does after a single-process run, and the rank processes never need Django.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import pickle
import socket
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Sampler

T = TypeVar("T")

# Rank 0 evaluates alone at the end of an epoch while the others already wait in the next step's gradient sync.
COLLECTIVE_TIMEOUT = timedelta(hours=2)
# After one rank failed, how long the others get to notice (their next collective fails) before they are stopped.
FAILURE_GRACE_S = 10.0


@dataclass(frozen=True)
class Rank:
    """Where a process stands in a run: its global rank, the number of ranks, its index on its host."""

    index: int = 0
    world_size: int = 1
    local: int = 0

    @property
    def is_main(self) -> bool:
        return self.index == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


SINGLE = Rank()


def rank_device(device: torch.device, rank: Rank) -> torch.device:
    """Each CUDA rank its own GPU (cuda:<local rank>); CPU ranks share the CPU."""
    return torch.device("cuda", rank.local) if device.type == "cuda" and rank.distributed else device


def resolve_nproc(nproc: int | None, device: torch.device) -> int:
    """The number of ranks: `nproc`, or None = every visible GPU on CUDA, 1 on CPU. ValueError when impossible."""
    if nproc is None:
        return max(1, torch.cuda.device_count()) if device.type == "cuda" else 1
    if nproc < 1:
        raise ValueError(f"nproc must be >= 1, got {nproc}")
    if device.type == "cuda" and nproc > torch.cuda.device_count():
        raise ValueError(f"nproc {nproc} on CUDA needs {nproc} GPUs; {torch.cuda.device_count()} visible")
    return nproc


# ----------------------------------------------------------------------------------------------------------
# Data


class ShardedSampler(Sampler[tuple[int, int]]):
    """One rank's share of an epoch sampler's (index, item seed) pairs: every world_size-th pair from its rank on.

    The epoch is padded with its first pairs to a multiple of world_size so that every rank takes the same number
    of steps (DistributedSampler's rule); with a per-rank batch of B / world_size, the ranks' step k together covers
    pairs k*B .. (k+1)*B - 1, the single-process step k.
    """

    def __init__(self, sampler: Sampler[tuple[int, int]], size: int, rank: Rank) -> None:
        self.sampler = sampler
        self.size = size
        self.rank = rank

    def __len__(self) -> int:
        return math.ceil(self.size / self.rank.world_size)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        pairs = list(self.sampler)
        padded = len(self) * self.rank.world_size
        pairs += pairs[: padded - len(pairs)]
        return iter(pairs[self.rank.index :: self.rank.world_size])


def shard(sampler: Sampler[tuple[int, int]], size: int, rank: Rank) -> Sampler[tuple[int, int]]:
    return ShardedSampler(sampler, size, rank) if rank.distributed else sampler


def rank_batch_size(batch_size: int, rank: Rank) -> int:
    """Each rank's batch: the global batch split over the ranks (rounded up when it does not divide)."""
    return math.ceil(batch_size / rank.world_size)


# ----------------------------------------------------------------------------------------------------------
# Model and collectives


def wrap(model: nn.Module, device: torch.device, rank: Rank) -> nn.Module:
    """The model the ranks train: DDP around it (SyncBatchNorm first on CUDA); the model itself in one process.

    Call before building the optimizer; evaluate and save `unwrap(wrapped)`.
    """
    if not rank.distributed:
        return model
    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return DistributedDataParallel(model, device_ids=[device.index])
    return DistributedDataParallel(model)


def unwrap(model: nn.Module) -> nn.Module:
    inner: nn.Module = model.module if isinstance(model, DistributedDataParallel) else model
    return inner


def _collective_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def from_main(read: Callable[[], T], rank: Rank) -> T:
    """`read()` run on rank 0 and its result handed to every rank (pickled), so only rank 0 touches the files or
    the clock that decides for all."""
    if not rank.distributed:
        return read()
    box: list[Any] = [read() if rank.is_main else None]
    dist.broadcast_object_list(box, src=0, device=_collective_device())
    value: T = box[0]
    return value


def reduce_epoch(stats: dict[str, Any], rank: Rank) -> dict[str, Any]:
    """`train_one_epoch`'s figures over all ranks: the loss averaged over every rank's samples, samples summed,
    seconds of the slowest rank; steps stay one rank's (the ranks step together)."""
    if not rank.distributed:
        return stats
    device = _collective_device()
    loss = stats["loss"] or 0.0
    sums = torch.tensor([loss * stats["samples"], stats["samples"]], dtype=torch.float64, device=device)
    dist.all_reduce(sums)
    seconds = torch.tensor([stats["seconds"]], dtype=torch.float64, device=device)
    dist.all_reduce(seconds, op=dist.ReduceOp.MAX)
    total_loss, samples = sums.tolist()
    return {
        **stats,
        "loss": total_loss / samples if samples else None,
        "samples": int(samples),
        "seconds": float(seconds.item()),
    }


# ----------------------------------------------------------------------------------------------------------
# Launching the ranks

# target(rank, on_progress or None, *args) -> its result (rank 0's is returned by `launch`)
RankTarget = Callable[..., Any]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _sendable(exc: BaseException, rank: Rank) -> BaseException:
    """The exception as the parent will raise it: with the rank's traceback as a note; a RuntimeError carrying the
    text when it cannot be pickled."""
    text = "".join(traceback.format_exception(exc))
    try:
        exc.add_note(f"in training rank {rank.index}:\n{text}")
        pickle.dumps(exc)
        return exc
    except Exception:
        return RuntimeError(f"training rank {rank.index} failed: {text}")


def _rank_main(
    local: int,
    nproc: int,
    backend: str,
    address: str,
    port: int,
    messages: Any,
    target: RankTarget,
    args: tuple[Any, ...],
) -> None:
    rank = Rank(index=local, world_size=nproc, local=local)
    try:
        if backend == "nccl":
            torch.cuda.set_device(local)
        dist.init_process_group(
            backend,
            init_method=f"tcp://{address}:{port}",
            rank=rank.index,
            world_size=rank.world_size,
            timeout=COLLECTIVE_TIMEOUT,
        )
        try:

            def report(progress: Any) -> None:
                messages.put(("progress", progress))

            result = target(rank, report if rank.is_main else None, *args)
            if rank.is_main:
                messages.put(("result", result))
        finally:
            dist.destroy_process_group()
    except BaseException as exc:
        messages.put(("error", _sendable(exc, rank)))


def launch(
    nproc: int,
    device: torch.device,
    target: RankTarget,
    args: tuple[Any, ...],
    *,
    on_progress: Callable[[Any], None] | None = None,
) -> Any:
    """Run `target(rank, on_progress, *args)` in `nproc` spawned rank processes on this host and return rank 0's
    result. Rank 0's progress reaches `on_progress` here; when it raises (a cancel), the ranks are stopped and the
    exception propagates. A rank's exception is raised here (the first one that is not a failed collective, which
    is only a consequence), after the other ranks stopped."""
    backend = "nccl" if device.type == "cuda" else "gloo"
    context = mp.get_context("spawn")
    messages = context.SimpleQueue()
    with _children_allowed():
        processes = mp.start_processes(
            _rank_main,
            args=(nproc, backend, "127.0.0.1", _free_port(), messages, target, args),
            nprocs=nproc,
            join=False,
            start_method="spawn",
        )
    result: Any = None
    errors: list[BaseException] = []
    failed_at: float | None = None
    try:
        while True:
            finished = processes.join(timeout=0.1)
            while not messages.empty():
                kind, value = messages.get()
                if kind == "progress" and on_progress is not None:
                    on_progress(value)
                elif kind == "result":
                    result = value
                elif kind == "error":
                    errors.append(value)
                    failed_at = failed_at or time.monotonic()
            if finished:
                break
            if failed_at is not None and time.monotonic() - failed_at > FAILURE_GRACE_S:
                _stop(processes.processes)  # ranks stuck in a collective with the failed one (NCCL waits long)
                break
    except BaseException:
        _stop(processes.processes)
        raise
    if errors:
        causes = [e for e in errors if not isinstance(e, dist.DistError)]
        raise (causes or errors)[0]
    return result


@contextlib.contextmanager
def _children_allowed() -> Iterator[None]:
    """Lift the daemon flag of this process while the ranks start.

    A Celery prefork worker's process is daemonic, and multiprocessing refuses children to a daemonic process (so
    that they are not orphaned when it is killed). Ranks do not outlive it for long: once it is gone rank 0's next
    progress message fails, and the other ranks' next collective with it.
    """
    config: dict[str, Any] = multiprocessing.current_process()._config  # type: ignore[attr-defined]
    daemon = config.get("daemon")
    config["daemon"] = False
    try:
        yield
    finally:
        if daemon is not None:
            config["daemon"] = daemon


def _stop(processes: list[Any]) -> None:
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=30)


def cores_per_rank(nproc: int) -> int:
    """The ranks share the host's cores (CPU threads, DataLoader workers)."""
    return max(1, (os.cpu_count() or 1) // nproc)
