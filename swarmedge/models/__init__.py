"""Torch model definitions, one file per model; ``build`` makes one from its config dict."""

from swarmedge import limits
from swarmedge.models.boids import BoidsConfig, BoidSwarm
from swarmedge.models.swarmformer import SwarmFormer, SwarmFormerConfig

# model type -> (config class, module class, named presets)
MODELS = {
    "swarmformer": (SwarmFormerConfig, SwarmFormer),
    "boids": (BoidsConfig, BoidSwarm),
}


def config_from_dict(model_type: str, config: dict, bytes_per_param: int = limits.BYTES_PER_PARAM):
    """Make the config dataclass of ``model_type`` from a plain dict.

    Raises ValueError for unknown keys and for values of the wrong type (``"32"`` for an int,
    ``true`` for a number), naming the key: configs come from users' JSON and checkpoints.
    Sizes are bounded before anything is built (``swarmedge.limits``): a field above its
    documented maximum, a NaN/infinite float, or weights (``bytes_per_param`` each: 4 for float32,
    16 while training) larger than the memory available raise ValueError too.
    """
    config_cls, _ = MODELS[model_type]
    fields = config_cls.__dataclass_fields__
    unknown = set(config) - set(fields)
    if unknown:
        raise ValueError(f"unknown {model_type} config key{'s' * (len(unknown) > 1)} {', '.join(sorted(unknown))}; "
                         f"the keys are {', '.join(fields)}")
    for key, value in config.items():
        kind = fields[key].type
        wanted = kind.__name__ if isinstance(kind, type) else str(kind)
        ok = (isinstance(value, bool) if "bool" in wanted
              else isinstance(value, (list, tuple)) and all(_is_int(v) for v in value) if "tuple" in wanted
              else _is_int(value) if "int" in wanted
              else isinstance(value, (int, float)) and not isinstance(value, bool))
        if not ok:
            raise ValueError(f"{model_type} config key {key!r} must be {wanted}, got {value!r}")
    limits.check_bounds(model_type, config)
    made = config_cls(**config)
    limits.check_memory(model_type, made.to_dict(), bytes_per_param)
    return made


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def build(model_type: str, config: dict):
    """``build("boids", {"blocks": 2, "recurrent": False})`` -> an initialised model in eval mode."""
    _, model_cls = MODELS[model_type]
    return model_cls(config_from_dict(model_type, config)).eval()


__all__ = ["MODELS", "BoidSwarm", "BoidsConfig", "SwarmFormer", "SwarmFormerConfig", "build", "config_from_dict"]
