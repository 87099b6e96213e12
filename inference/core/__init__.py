"""Torch-side library of the inference app: networks, profiles, checkpoints, crops, the three-stage pipeline,
uncertainty and review selection. Nothing here imports Django (an import-linter contract checks it)."""
