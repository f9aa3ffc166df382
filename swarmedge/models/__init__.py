"""Torch model definitions, one file per model; ``build`` makes one from its config dict."""

from swarmedge.models.boids import BoidsConfig, BoidSwarm
from swarmedge.models.swarmformer import SwarmFormer, SwarmFormerConfig

# model type -> (config class, module class, named presets)
MODELS = {
    "swarmformer": (SwarmFormerConfig, SwarmFormer),
    "boids": (BoidsConfig, BoidSwarm),
}


def config_from_dict(model_type: str, config: dict):
    """Make the config dataclass of ``model_type`` from a plain dict (unknown keys are an error)."""
    config_cls, _ = MODELS[model_type]
    known = set(config_cls.__dataclass_fields__)
    unknown = set(config) - known
    if unknown:
        raise ValueError(f"unknown {model_type} config keys: {sorted(unknown)}")
    return config_cls(**config)


def build(model_type: str, config: dict):
    """``build("boids", {"blocks": 2, "recurrent": False})`` -> an initialised model in eval mode."""
    _, model_cls = MODELS[model_type]
    return model_cls(config_from_dict(model_type, config)).eval()


__all__ = ["MODELS", "BoidSwarm", "BoidsConfig", "SwarmFormer", "SwarmFormerConfig", "build", "config_from_dict"]
