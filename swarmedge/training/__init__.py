"""Training on CPU (torch): ``train`` runs a seeded, resumable loop over a task."""

from swarmedge.training.loop import TrainConfig, train

__all__ = ["TrainConfig", "train"]
