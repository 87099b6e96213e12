"""Torch-side library of the training app: records, datasets, the engine (one epoch, evaluation), the stage
registry, the stage run, metrics, plots and the promotion gate. Nothing here imports Django (an import-linter
contract checks it)."""
