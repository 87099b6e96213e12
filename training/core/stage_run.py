"""Training and evaluation entry points of a stage (plain PyTorch; no Django anywhere below).

`train_stage` trains one stage of `training.core.stages.STAGES` -- one model, or each member of an ensemble in
turn -- on the `train` split of a list of FieldRecords, picks each model's best epoch on `val` (the stage's main
metric), and reports metrics on `test` (`val` when there is no test field). Every epoch writes a resumable
checkpoint (`inference.core.checkpoints` format) under `out_dir/<model>/last.pt` and, when the epoch is the best
so far, `best.pt`; calling `train_stage` again with the same out_dir resumes after the last finished epoch.

Hyperparameters come from the profile's `training` block of the stage (inference/core/profiles.yaml);
`TrainConfig.overrides` replaces any of them (`training.core.overrides.OVERRIDES`). The learning rate follows a
cosine annealing over `cosine_t_max` epochs (stepped per iteration, after an optional linear warm-up). Randomness
derives from `TrainConfig.seed` only: model init from (seed, member), each epoch's order and every item's
augmentation from (seed, member, epoch), so the same seed gives the same weights and a resumed run repeats exactly
the epochs it would have run (on CPU; CUDA kernels may add nondeterminism). What differs between stages comes from
the stage's row and its task's engine (`training.core.engine`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from inference.core.checkpoints import (
    CheckpointMeta,
    LoadedCheckpoint,
    load_checkpoint,
    read_payload,
    save_checkpoint,
)
from inference.core.pipeline import default_amp_dtype, resolve_device
from inference.core.weights import apply_starting_point
from training.core import distributed, plots
from training.core.config import StageSettings, TrainConfig, derive_seed, resolve_settings
from training.core.data import (
    Augment,
    CropCache,
    CropDataset,
    ImageCache,
    SeededSampler,
    crop_cache_key,
    crop_reach,
    worker_context,
)
from training.core.distributed import SINGLE, Rank
from training.core.engine import (
    Evaluation,
    TrainingSet,
    engine_of,
    evaluate_detailed,
    make_optimizer,
    make_scheduler,
    train_one_epoch,
)
from training.core.records import SPLITS, FieldRecord
from training.core.stages import StageSpec, stage_spec


@dataclass
class Progress:
    stage: str
    member: int | None
    epoch: int
    epochs: int
    fraction: float  # 0..1 of the whole run
    loss: float | None
    message: str


@dataclass
class StageResult:
    stage: str
    checkpoints: list[Path]
    architecture: str
    metrics: dict[str, Any]
    val_metrics: dict[str, Any]
    best_epochs: list[int]
    history: list[dict[str, Any]]
    plots: list[Path]
    warnings: list[str] = dataclasses.field(default_factory=list)  # also reported as progress (the job's log)
    # Per model: the starting point it was initialised from ({name, sha256}), None from random init.
    starting_points: list[dict[str, str] | None] = dataclasses.field(default_factory=list)


ProgressCallback = Callable[[Progress], None]


# ----------------------------------------------------------------------------------------------------------
# Data


def _fields_of(fields: Sequence[FieldRecord], split: str) -> list[FieldRecord]:
    return [f for f in fields if f.split == split]


def _check_images(fields: Sequence[FieldRecord]) -> None:
    missing = [f for f in fields if not os.path.isfile(f.image_path)]
    if missing:
        raise ValueError(f"{len(missing)} field image(s) not found, first {missing[0].key}: {missing[0].image_path}")


def _check_trainable(spec: StageSpec, train_fields: Sequence[FieldRecord]) -> None:
    if not len(spec.examples(train_fields)):
        raise ValueError(
            f"the train split has no usable examples for the {spec.name} stage "
            f"({len(train_fields)} train fields, 0 {spec.examples_named})"
        )


def _batching(settings: StageSettings, size: int, rank: Rank) -> tuple[int, int, bool]:
    """(items, batch size, drop_last) of one rank's epoch over a training set of `size` items."""
    items = math.ceil(size / rank.world_size)
    batch_size = min(distributed.rank_batch_size(settings.training.batch_size, rank), items)
    drop_last = items > batch_size and items % batch_size == 1  # no batch of one (BatchNorm)
    return items, batch_size, drop_last


def _loader(settings: StageSettings, training_set: TrainingSet, sampler: SeededSampler, rank: Rank) -> DataLoader[Any]:
    """One loader for a model's whole run: its workers persist across epochs (each epoch only reseeds the
    sampler, which runs in this process), so they start, and fill their caches, once."""
    _, batch_size, drop_last = _batching(settings, len(training_set), rank)
    return DataLoader(
        training_set.dataset,
        batch_size=batch_size,
        sampler=distributed.shard(sampler, len(training_set), rank),
        num_workers=settings.num_workers,
        multiprocessing_context=worker_context(settings.num_workers),
        persistent_workers=settings.num_workers > 0,
        collate_fn=training_set.collate,
        pin_memory=settings.device.type == "cuda",
        drop_last=drop_last,
    )


def _cut_crops(settings: StageSettings, dataset: CropDataset, data_snapshot: str, folder: Path | None) -> CropCache:
    """The dataset's cell windows: from `folder` when this snapshot's were cut before with these crop settings,
    else cut now (fields decoded in the DataLoader workers) and kept there."""
    reach = crop_reach(dataset.augment)
    path = None
    if folder is not None and data_snapshot:
        path = folder / f"{crop_cache_key(data_snapshot, dataset.fields, dataset.items, dataset.spec, reach)}.pt"
        if path.exists():
            return CropCache.load(path)
    crops = CropCache.cut(dataset.fields, dataset.items, dataset.spec, reach, workers=settings.num_workers)
    if path is not None:
        crops.save(path)
    return crops


def _steps_per_epoch(settings: StageSettings, size: int, rank: Rank) -> int:
    items, batch_size, drop_last = _batching(settings, size, rank)
    return items // batch_size if drop_last else math.ceil(items / batch_size)


@contextlib.contextmanager
def _threads(count: int | None) -> Iterator[None]:
    if count is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# ----------------------------------------------------------------------------------------------------------
# Checkpoints


def _meta(
    settings: StageSettings,
    arch: str,
    member: int | None,
    data_snapshot: str,
    metrics: dict[str, Any],
    class_counts: tuple[int, ...] = (),
) -> CheckpointMeta:
    profile = settings.profile
    norm = profile.normalisation
    meta_fields, config_fields = engine_of(settings.spec).checkpoint_meta(settings)
    config: dict[str, Any] = {
        **dataclasses.asdict(settings.training),
        "t_max": settings.t_max,
        "seed": settings.seed,
        "member": member,
        "context_margin": profile.context_margin,
        "warmup_epochs": settings.warmup_epochs,
        "balance_power": settings.balance_power,
        "augment": settings.augment,
        "init": settings.init,
        # Which weights the model started from (None: random init), so a model's provenance is on its checkpoint.
        "starting_point": {"name": point.name, "sha256": point.sha256, "arch": point.arch}
        if (point := settings.starting_point)
        else None,
        **config_fields,
    }
    return CheckpointMeta(
        stage=settings.spec.checkpoint_stage.value,
        arch=arch,
        classes=settings.spec.classes,
        profile=profile.name,
        mean=norm.mean,
        std=norm.std,
        data_snapshot=data_snapshot,
        metrics=metrics,
        config=config,
        class_counts=class_counts,
        **meta_fields,
    )


def _jsonable(value: Any) -> Any:
    """A JSON round trip (NaN/inf -> None) so results can be stored as they are."""

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, Mapping):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        if isinstance(v, np.generic):
            return clean(v.item())
        return v

    result: Any = json.loads(json.dumps(clean(value)))
    return result


# ----------------------------------------------------------------------------------------------------------
# The stage run


class _Run:
    def __init__(
        self,
        settings: StageSettings,
        fields: Sequence[FieldRecord],
        out_dir: Path,
        on_progress: ProgressCallback | None,
        data_snapshot: str,
        crop_cache_dir: Path | None = None,
        rank: Rank = SINGLE,
    ) -> None:
        self.s = settings
        self.rank = rank  # only rank 0 evaluates and writes (training.core.distributed)
        self.engine = engine_of(settings.spec)
        self.out_dir = out_dir
        self.on_progress = on_progress
        self.data_snapshot = data_snapshot
        self.cache = ImageCache()
        self.train_fields = _fields_of(fields, "train")
        self.val_fields = _fields_of(fields, "val")
        self.test_fields = _fields_of(fields, "test")
        self.members = settings.models()
        self.started = time.monotonic()
        self.history: list[dict[str, Any]] = []
        self.warnings: list[str] = []
        augment = Augment() if settings.augment else Augment.none()
        self.train_set = self.engine.training_set(settings, self.train_fields, augment, self.cache)
        if isinstance(self.train_set.dataset, CropDataset):
            self.train_set.dataset.crops = _cut_crops(settings, self.train_set.dataset, data_snapshot, crop_cache_dir)
        # Train examples per class, for the prior correction of balanced sampling (inference.core.calibration).
        labels = getattr(self.train_set.dataset, "labels", None)
        self.class_counts: tuple[int, ...] = (
            tuple(int(n) for n in np.bincount(np.asarray(labels, dtype=int), minlength=len(settings.spec.classes)))
            if labels is not None
            else ()
        )
        # Each model's own settings (its init and that init's recipe), resolved up front so that an unregistered
        # starting point of the last ensemble member fails before the first member trains.
        self.model_settings = {member: settings.for_model(member or 0) for member, _ in self.members}

    # -- progress --------------------------------------------------------------------------------------
    def _report(self, slot: int, member: int | None, epoch: int, done: float, loss: float | None, message: str) -> None:
        if self.on_progress is None:
            return
        epochs = [self.model_settings[m].epochs for m, _ in self.members]  # per model: its init's recipe
        fraction = min(1.0, max(0.0, (sum(epochs[:slot]) + done) / sum(epochs)))
        self.on_progress(Progress(self.s.stage, member, epoch, epochs[slot], fraction, loss, message))

    def _time_left(self) -> float | None:
        if self.s.time_limit_s is None:
            return None
        return self.s.time_limit_s - (time.monotonic() - self.started)

    # -- one model ------------------------------------------------------------------------------------
    def _evaluate(
        self, models: Sequence[nn.Module], fields: Sequence[FieldRecord], options: Mapping[str, Any] | None = None
    ) -> Evaluation:
        options = {**self.engine.evaluation_options(self.s), **(options or {})}
        return evaluate_detailed(self.s.stage, models, fields, device=self.s.device, cache=self.cache, **options)

    def _calibrate(self, path: Path) -> LoadedCheckpoint:
        """Fit the model's softmax temperature on val and store it in its best checkpoint (1.0 without val)."""
        loaded = load_checkpoint(path, map_location=self.s.device)
        if not self.val_fields:
            return loaded
        temperature = self.engine.temperature(self.s, loaded.model, self.val_fields, self.cache)
        if temperature != loaded.meta.temperature:
            loaded.meta = dataclasses.replace(loaded.meta, temperature=temperature)
            save_checkpoint(path, loaded.model, loaded.meta, epoch=loaded.epoch)
        return loaded

    def train_member(self, slot: int, member: int | None, arch: str) -> tuple[Path, int, list[dict[str, Any]]]:
        s = self.model_settings[member]
        main_metric = s.spec.main_metric
        name = s.spec.model_folder(member, arch)
        folder = self.out_dir / name
        last_path, best_path = folder / "last.pt", folder / "best.pt"
        fingerprint = s.fingerprint(arch, member)
        torch.manual_seed(derive_seed(s.seed, s.stage, member, "init"))
        model = self.engine.build(s.spec, s.profile, arch)
        init_paths = s.init_checkpoints
        if init_paths:
            index = slot if len(init_paths) > 1 else 0
            if index >= len(init_paths):
                raise ValueError(f"override init_checkpoints: {len(init_paths)} files for {len(self.members)} models")
            loaded = load_checkpoint(init_paths[index], expected_stage=s.spec.checkpoint_stage, expected_arch=arch)
            model.load_state_dict(loaded.model.state_dict())
        elif s.starting_point is not None:
            point = s.starting_point
            report = apply_starting_point(model, arch, point.path, sha256=point.sha256)
            self._report(slot, member, 0, 0, None, f"{name}: starting point {point.name}: {report.summary()}")
        self.engine.prepare(model, s.device)
        trained = distributed.wrap(model, s.device, self.rank)
        model = distributed.unwrap(trained)
        optimizer = make_optimizer(s, model)
        scheduler = make_scheduler(s, optimizer, _steps_per_epoch(s, len(self.train_set), self.rank))
        amp_dtype = default_amp_dtype(s.device)
        scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
        step = self.engine.step(s.device, amp_dtype, s.label_smoothing)

        start_epoch, best_epoch, best_score = 1, 0, None
        history: list[dict[str, Any]] = []
        finished = False
        payload = distributed.from_main(
            lambda: read_payload(last_path, map_location="cpu") if last_path.exists() else None, self.rank
        )
        if payload is not None:
            extra = payload.get("extra_state") or {}
            if extra.get("fingerprint") != fingerprint:
                theirs = extra.get("fingerprint") or {}
                diff = {k: (theirs.get(k), v) for k, v in fingerprint.items() if theirs.get(k) != v}
                raise ValueError(f"{folder} holds a run with other settings (stored, now): {diff}; use another out_dir")
            model.load_state_dict(payload["state_dict"])
            if payload.get("optimizer"):
                optimizer.load_state_dict(payload["optimizer"])
            if payload.get("scheduler"):
                scheduler.load_state_dict(payload["scheduler"])
            start_epoch = int(payload["epoch"]) + 1
            best_epoch = int(extra.get("best_epoch") or 0)
            best_score = extra.get("best_score")
            history = list(extra.get("history") or [])
            finished = bool(extra.get("finished"))

        epoch = start_epoch - 1
        sampler = SeededSampler(len(self.train_set), 0, self.train_set.weights)
        loader = _loader(s, self.train_set, sampler, self.rank)
        for epoch in range(start_epoch, s.epochs + 1):
            if finished:
                break
            epoch_seed = derive_seed(s.seed, s.stage, member, "epoch", epoch)
            torch.manual_seed(epoch_seed)
            sampler.seed = epoch_seed

            def on_step(step: int, steps: int, loss: float, epoch: int = epoch) -> None:
                if step % s.progress_every == 0 and step < steps:
                    self._report(
                        slot,
                        member,
                        epoch,
                        epoch - 1 + step / steps,
                        loss,
                        f"{name}: epoch {epoch}/{s.epochs}, step {step}/{steps}, loss {loss:.4f}",
                    )

            def out_of_time() -> bool:
                if s.time_limit_s is None:
                    return False
                left = self._time_left()
                return left is not None and left <= 0

            def stop_all() -> bool:  # rank 0's clock decides for every rank
                return distributed.from_main(out_of_time, self.rank)

            stats = train_one_epoch(
                trained, loader, optimizer, scheduler, step=step, scaler=scaler, on_step=on_step, should_stop=stop_all
            )
            stats = distributed.reduce_epoch(stats, self.rank)
            stopped = bool(stats["stopped"]) or stop_all()
            last_epoch = epoch == s.epochs or stopped
            val_metrics: dict[str, Any] = {}
            score = None
            if self.val_fields and self.rank.is_main and (epoch % s.eval_every == 0 or last_epoch):
                val_metrics = self._evaluate([model], self.val_fields).metrics
                score = val_metrics.get(main_metric)
            # Best epoch: the highest val main metric (latest on ties). Without val fields, or while the val metric
            # is undefined on every evaluated epoch (val cells without a class, val fields without boxes), the
            # latest epoch: never the near-untrained first one (issue 15).
            evaluated = bool(val_metrics)
            improved = (score is not None and (best_score is None or score >= best_score)) or (
                best_score is None and (last_epoch or evaluated or best_epoch == 0)
            )
            if improved:
                best_epoch, best_score = epoch, score if score is not None else best_score
            row = {
                "epoch": epoch,
                "member": member,
                "arch": arch,
                "train_loss": stats["loss"],
                "val_metric": score,
                f"val_{main_metric}": score,
                "lr": stats["lr"],
                "seconds": round(stats["seconds"], 3),
                "steps": stats["steps"],
            }
            history.append(row)
            finished = last_epoch
            extra = {
                "fingerprint": fingerprint,
                "best_epoch": best_epoch,
                "best_score": best_score,
                "history": history,
                "finished": finished,
                "stopped_early": stopped and epoch < s.epochs,
            }
            meta = _meta(s, arch, member, self.data_snapshot, val_metrics, self.class_counts)
            if improved and self.rank.is_main:
                save_checkpoint(best_path, model, meta, epoch=epoch)
            if self.rank.is_main:
                save_checkpoint(
                    last_path, model, meta, optimizer=optimizer, scheduler=scheduler, epoch=epoch, extra_state=extra
                )
            # Say why there is no val figure: no field of a val patient in the snapshot, or not an evaluation epoch.
            shown = (
                f"{score:.4f}"
                if score is not None
                else "none (no val fields in the snapshot)"
                if not self.val_fields
                else f"not evaluated this epoch (every {s.eval_every})"
            )
            self._report(
                slot,
                member,
                epoch,
                epoch,
                stats["loss"],
                f"{name}: epoch {epoch}/{s.epochs} done, loss {stats['loss']:.4f}, val {main_metric} {shown}"
                if stats["loss"] is not None
                else f"{name}: epoch {epoch}/{s.epochs} done",
            )
            if stopped:
                break
        if self.val_fields and best_score is None and history and self.rank.is_main:
            warning = (
                f"warning: {name}: val {main_metric} is undefined on every evaluated epoch "
                f"({len(self.val_fields)} val fields without usable {s.spec.examples_named}); "
                f"best.pt is the latest epoch ({best_epoch}), not a val-selected one"
            )
            self.warnings.append(warning)
            self._report(slot, member, best_epoch, best_epoch, None, warning)
        if self.rank.is_main and not best_path.exists():
            raise ValueError(f"{folder}: the run finished without a best checkpoint (no epoch was trained)")
        return best_path, best_epoch, history

    # -- the whole stage ------------------------------------------------------------------------------
    def train(self) -> tuple[list[Path], list[int]]:
        """Train every model of the stage: (best checkpoint, best epoch) of each."""
        checkpoints, best_epochs = [], []
        for slot, (member, arch) in enumerate(self.members):
            path, best_epoch, history = self.train_member(slot, member, arch)
            checkpoints.append(path)
            best_epochs.append(best_epoch)
            self.history.extend(history)
        return checkpoints, best_epochs

    def run(self) -> StageResult:
        s = self.s
        checkpoints, best_epochs = self.train()
        loaded = [self._calibrate(p) for p in checkpoints]
        models = [c.model for c in loaded]
        # The run's reported metrics are those of the probabilities the pipeline will show (calibrated).
        options = self.engine.checkpoint_options([c.meta for c in loaded])
        plots_dir = self.out_dir / "plots"
        val_eval = self._evaluate(models, self.val_fields, options) if self.val_fields else None
        split = "test" if self.test_fields else "val" if self.val_fields else None
        final = (self._evaluate(models, self.test_fields, options) if split == "test" else val_eval) if split else None
        metrics = dict(final.metrics) if final else {}
        metrics["split"] = split
        written = self.engine.plots(s.spec, final, plots_dir) if final else []
        written.append(
            plots.learning_curve_png(
                self.history,
                plots_dir / f"{s.stage}_learning_curve.png",
                metric=s.spec.main_metric,
                title=f"{s.stage} ({s.profile.name})",
            )
        )
        last_member = self.members[-1][0]
        last_epochs = self.model_settings[last_member].epochs
        self._report(len(self.members) - 1, last_member, last_epochs, last_epochs, None, f"{s.stage}: done")
        return StageResult(
            stage=s.stage,
            checkpoints=checkpoints,
            architecture="+".join(arch for _, arch in self.members),
            metrics=_jsonable(metrics),
            val_metrics=_jsonable(dict(val_eval.metrics) if val_eval else {}),
            best_epochs=best_epochs,
            history=_jsonable(self.history),
            plots=written,
            warnings=list(self.warnings),
            starting_points=[
                {"name": p.name, "sha256": p.sha256} if (p := self.model_settings[m].starting_point) else None
                for m, _ in self.members
            ],
        )


def train_stage(
    config: TrainConfig,
    fields: Sequence[FieldRecord],
    out_dir: Path,
    *,
    on_progress: ProgressCallback | None = None,
    data_snapshot: str = "",
    crop_cache_dir: Path | None = None,
    nproc: int | None = 1,
) -> StageResult:
    """Train one stage (see the module docstring); ValueError for bad input, before anything is written.

    `crop_cache_dir`: where crop stages keep the cell windows they cut, by `data_snapshot` and crop settings.
    `nproc` > 1 trains data-parallel in that many processes (`training.core.distributed`; one GPU each on CUDA);
    None = one per visible GPU on CUDA, one process on CPU.
    """
    settings = resolve_settings(config)
    fields = list(fields)
    bad = [f.key for f in fields if f.split not in SPLITS]
    if bad:
        raise ValueError(f"fields with an unknown split: {bad[:5]}")
    _check_trainable(settings.spec, _fields_of(fields, "train"))
    _check_images(fields)
    nproc = distributed.resolve_nproc(nproc, settings.device)
    nodes = distributed.nodes()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if nproc > 1 or nodes > 1:
        result: StageResult = distributed.launch(
            nproc,
            settings.device,
            _train_rank,
            (config, fields, out_dir, data_snapshot, crop_cache_dir),
            on_progress=on_progress,
        )
        return result
    with _threads(settings.num_threads if settings.device.type == "cpu" else None):
        return _Run(settings, fields, out_dir, on_progress, data_snapshot, crop_cache_dir).run()


def _train_rank(
    rank: Rank,
    on_progress: ProgressCallback | None,
    config: TrainConfig,
    fields: list[FieldRecord],
    out_dir: Path,
    data_snapshot: str,
    crop_cache_dir: Path | None = None,
) -> StageResult | None:
    """One rank of a data-parallel run (`distributed.launch`): rank 0 returns the result, the others None."""
    settings = resolve_settings(config)
    cores = distributed.cores_per_rank(rank.world_size)
    settings = dataclasses.replace(
        settings,
        device=distributed.rank_device(settings.device, rank),
        num_workers=min(settings.num_workers, cores),
    )
    on_cpu = settings.device.type == "cpu"
    with _threads((settings.num_threads or cores) if on_cpu else None):
        run = _Run(settings, fields, out_dir, on_progress, data_snapshot, crop_cache_dir, rank)
        if rank.is_main:
            return run.run()
        run.train()
        return None


def evaluate_checkpoints(
    stage: str,
    checkpoints: Sequence[Path],
    fields: Sequence[FieldRecord],
    *,
    split: str = "test",
    device: str | None = None,
    plots_dir: Path | None = None,
) -> dict[str, Any]:
    """Metrics (contract keys) of saved checkpoints on one split; an ensemble averages its members.

    Evaluation uses each checkpoint's stored preprocessing (input size, normalisation, context margin).
    """
    spec = stage_spec(stage)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    if not checkpoints:
        raise ValueError("no checkpoints to evaluate")
    if not spec.ensemble and len(checkpoints) != 1:
        raise ValueError(f"the {stage} stage has exactly one checkpoint, got {len(checkpoints)}")
    chosen = _fields_of(fields, split)
    if not chosen:
        raise ValueError(f"no fields in the {split} split")
    _check_images(chosen)
    torch_device = resolve_device(device or "auto")
    loaded = [load_checkpoint(p, expected_stage=spec.checkpoint_stage, map_location=torch_device) for p in checkpoints]
    engine = engine_of(spec)
    options = engine.checkpoint_options([c.meta for c in loaded])
    evaluation = evaluate_detailed(
        stage, [c.model for c in loaded], chosen, device=torch_device, cache=ImageCache(), **options
    )
    result = dict(evaluation.metrics)
    result["split"] = split
    if plots_dir is not None:
        engine.plots(spec, evaluation, Path(plots_dir))
    jsonable: dict[str, Any] = _jsonable(result)
    return jsonable
