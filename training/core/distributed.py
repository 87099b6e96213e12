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

Several hosts: with `AICELL_TRAIN_NNODES` = H > 1 and torchrun's `MASTER_ADDR` / `MASTER_PORT` (an address of this
host the others reach, and a free port) in the environment, `launch` starts this host's ranks as node 0 of H, and
each other host runs `python -m training.core.distributed --nnodes H --node-rank R --nproc-per-node N` (the same
code, `MASTER_ADDR` / `MASTER_PORT`, and read access to the field images at the same paths): its ranks join every
run node 0 starts and get what to train from rank 0 when they join.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import multiprocessing
import os
import pickle
import signal
import socket
import sys
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


@dataclass(frozen=True)
class Hosts:
    """The hosts of a run: how many, this one's index, and where rank 0's rendezvous listens."""

    nodes: int = 1
    node_rank: int = 0
    address: str = "127.0.0.1"
    port: int = 0  # 0 = a free port of this host (one host)

    @classmethod
    def from_env(cls) -> Hosts:
        nodes = int(os.environ.get("AICELL_TRAIN_NNODES") or 1)
        if nodes <= 1:
            return cls()
        if not os.environ.get("MASTER_ADDR") or not os.environ.get("MASTER_PORT"):
            raise ValueError(
                "AICELL_TRAIN_NNODES > 1 needs MASTER_ADDR and MASTER_PORT (rank 0's host and a free port)"
            )
        return cls(nodes, 0, os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]))


def _rank_main(
    local: int,
    nproc: int,
    hosts: Hosts,
    backend: str,
    messages: Any,
    target: RankTarget | None,
    args: tuple[Any, ...],
) -> None:
    """One rank: join the group, get what to train from rank 0 when on another host, train, hand back."""
    rank = Rank(index=hosts.node_rank * nproc + local, world_size=hosts.nodes * nproc, local=local)
    try:
        if backend == "nccl":
            torch.cuda.set_device(local)
        dist.init_process_group(
            backend,
            init_method=f"tcp://{hosts.address}:{hosts.port}",
            rank=rank.index,
            world_size=rank.world_size,
            timeout=COLLECTIVE_TIMEOUT,
        )
        try:
            if hosts.nodes > 1:
                target, args = from_main(lambda: (target, args), rank)
            if target is None:
                raise RuntimeError("rank 0 sent nothing to train")

            def report(progress: Any) -> None:
                messages.put(("progress", progress))

            result = target(rank, report if rank.is_main else None, *args)
            # The others wait for rank 0's evaluation and writes, so that a joining host's next ranks cannot reach
            # this run's rendezvous (it closes with rank 0) and take it for the next run's.
            dist.barrier()
            if rank.is_main:
                messages.put(("result", result))
        finally:
            dist.destroy_process_group()
    except BaseException as exc:
        if messages is None:  # a joining host's rank: its own log, and the host joins the next run
            traceback.print_exc()
            return
        messages.put(("error", _sendable(exc, rank)))


def launch(
    nproc: int,
    device: torch.device,
    target: RankTarget,
    args: tuple[Any, ...],
    *,
    on_progress: Callable[[Any], None] | None = None,
) -> Any:
    """Run `target(rank, on_progress, *args)` in `nproc` spawned rank processes on this host (and as many on each
    joining host, see the module docstring) and return rank 0's result. Rank 0's progress reaches `on_progress`
    here; when it raises (a cancel), the ranks are stopped and the exception propagates. A rank's exception is
    raised here (the first one that is not a failed collective, which is only a consequence), after the other ranks
    stopped."""
    hosts = Hosts.from_env()
    if hosts.nodes == 1:
        hosts = Hosts(port=_free_port())
    backend = "nccl" if device.type == "cuda" else "gloo"
    context = mp.get_context("spawn")
    messages = context.SimpleQueue()
    with _children_allowed():
        processes = mp.start_processes(
            _rank_main,
            args=(nproc, hosts, backend, messages, target, args),
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


def nodes() -> int:
    """The hosts a run spans (`AICELL_TRAIN_NNODES`, default 1)."""
    return Hosts.from_env().nodes


def join(hosts: Hosts, nproc: int, backend: str, *, once: bool = False) -> None:
    """A joining host: start `nproc` ranks for every run node 0 launches (each waits at the rendezvous until node 0
    starts one), until stopped (`once`: one run)."""
    while True:
        processes = mp.start_processes(
            _rank_main, args=(nproc, hosts, backend, None, None, ()), nprocs=nproc, join=False, start_method="spawn"
        )
        try:
            while not processes.join():
                pass
        finally:  # stopped (SIGTERM, Ctrl-C): no rank is left waiting at the rendezvous
            _stop(processes.processes)
        if once:
            return


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m training.core.distributed",
        description="Join data-parallel training runs started on node 0 (MASTER_ADDR, MASTER_PORT) as another host.",
    )
    parser.add_argument("--nnodes", type=int, required=True, help="hosts in the run (AICELL_TRAIN_NNODES on node 0)")
    parser.add_argument("--node-rank", type=int, required=True, help="this host's index, 1 .. nnodes - 1")
    parser.add_argument("--nproc-per-node", type=int, required=True, help="ranks per host (node 0's nproc)")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--once", action="store_true", help="join one run, then exit")
    options = parser.parse_args(argv)
    if not 1 <= options.node_rank < options.nnodes:
        parser.error("--node-rank must be 1 .. nnodes - 1 (node 0 is the training job's host)")
    address, port = os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT")
    if not address or not port:
        parser.error("set MASTER_ADDR and MASTER_PORT to node 0's address and port")
    hosts = Hosts(options.nnodes, options.node_rank, address, int(port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    join(hosts, options.nproc_per_node, "nccl" if options.device == "cuda" else "gloo", once=options.once)


if __name__ == "__main__":
    main()
