"""Reading the checkpoint layouts users have into swarmedge's checkpoint dict.

``swarmedge.checkpoint.load_checkpoint`` is the one entry point; this module knows the
layouts it accepts and turns each into ``{model_type, config, labels, preprocessing,
state_dict, metadata}``:

- swarmedge's own ``.pt`` (and the ``OUT.resume.pt`` of an interrupted ``swarmedge train``);
- training-loop dicts: the weights under ``model_state_dict``, ``state_dict``, ``model``, …
  with the model's config beside them under ``params``, ``config``, ``hparams``,
  ``model_args``, ``args``, …; optimizer, scheduler and epoch state are ignored;
- a bare state dict (``torch.save(model.state_dict())``, ``pytorch_model.bin``) with a
  ``config.json`` beside it;
- the reference layout, ``model.safetensors`` + ``config.json``.

On every layout the weights are normalised the same way: the ``module.`` (DataParallel/DDP)
and ``_orig_mod.`` (torch.compile) key prefixes are removed, half-precision tensors are cast
to float32, and config values the weights determine (vocab_size, d_model, num_layers, …) are
read from the weights. Files are read with ``torch.load(weights_only=True)`` only; a whole
pickled module (``torch.save(model)``) is refused with a re-save command that works
(``swarmedge.torch_file``).
"""

import json
from pathlib import Path

from swarmedge.errors import CheckpointError, InputError

# Where training loops put the weights, and the model's config beside them (first wins on ties).
WEIGHT_KEYS = ("model_state_dict", "state_dict", "model", "model_state", "net", "network", "weights")
CONFIG_KEYS = ("model_args", "model_config", "model_kwargs", "params", "hparams", "hyper_parameters",
               "hyperparameters", "config", "cfg", "args")
WRAPPER_PREFIXES = {"module.": "DataParallel/DDP", "_orig_mod.": "torch.compile"}

# Config keys of each model that the weights do not determine: without them the model would
# compute something else than it was trained to, so they are asked for, never defaulted.
NEEDED = {"swarmformer": ("seq_len", "cluster_size", "T_local"),
          "boids": ("blocks", "residual_scaling", "habitat_scaling")}
ALIASES = {"boids": {"num_layers": "blocks"}}  # the reference boid config's spelling


def checkpoint_from_object(obj, path: Path, notices: list[str]) -> dict:
    """Find the weights and config in what ``torch.load`` gave.

    Returns ``{layout, state, config, config_from, extras}`` (config None when the file has
    none), or, for swarmedge's own resume file, the swarmedge checkpoint dict itself.
    Raises ``CheckpointError`` when no state dict is found.
    """
    from swarmedge.checkpoint import FORMAT

    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a checkpoint dict; "
                              "save {'model_state_dict': model.state_dict(), 'params': {...}} instead")
    if isinstance(obj.get("checkpoint"), dict) and obj["checkpoint"].get("format") == FORMAT and _is_state(
            obj.get("model")):
        notices.append(f"{path.name} is a swarmedge training resume file: its model weights are used, "
                       "the optimizer state is ignored")
        return {**obj["checkpoint"], "state_dict": obj["model"]}
    if _is_state(obj):
        return {"layout": "bare state dict", "state": obj, "config": None, "config_from": None, "extras": {}}
    weights_key = next((k for k in WEIGHT_KEYS if _is_state(obj.get(k))), None)
    if weights_key is None:
        empty = next((k for k in WEIGHT_KEYS if obj.get(k) == {}), None)
        if empty is not None:
            raise CheckpointError(f"{path}: its '{empty}' is empty, so there are no weights to load; save it "
                                  "after training, with model.state_dict() there")
        keys = ", ".join(map(str, list(obj)[:8]))
        raise CheckpointError(
            f"{path} holds no model weights that swarmedge recognises (keys: {keys}); save the state dict "
            "under 'model_state_dict' with the model's config under 'params'"
        )
    config, where = _find_config(obj)
    ignored = [str(k) for k in obj if any(w in str(k) for w in ("optim", "sched", "scaler"))]
    if ignored:
        notices.append(f"{path.name}: weights read from '{weights_key}'; "
                       f"ignored the training state ({', '.join(ignored)})")
    extras = {k: v for k, v in obj.items() if isinstance(v, (int, float, str, bool)) and k != weights_key}
    return {"layout": f"training-loop checkpoint (weights under '{weights_key}')", "state": obj[weights_key],
            "config": config, "config_from": where, "extras": extras}


def _is_state(value) -> bool:
    import torch

    return (isinstance(value, dict) and bool(value)
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items()))


def _plain(value):
    """A config dict from a dict or argparse.Namespace, numpy scalars made Python numbers."""
    import argparse

    import numpy as np

    if isinstance(value, argparse.Namespace):
        value = vars(value)
    if not isinstance(value, dict):
        return None
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in value.items()}


def _find_config(obj: dict) -> tuple[dict | None, str | None]:
    """The dict among ``CONFIG_KEYS`` (or nested one level in one) with the most model keys."""
    known = {k for keys in NEEDED.values() for k in keys} | {
        "vocab_size", "d_model", "num_layers", "num_classes", "recurrent", "dim_feedforward", "digits", "nhead"}
    best, best_where, best_score = None, None, 0
    for key in CONFIG_KEYS:
        top = _plain(obj.get(key))
        if top is None:
            continue
        candidates = [(top, f"the config under '{key}'")] + [
            (_plain(v), f"the config under '{key}'['{k}']") for k, v in top.items() if _plain(v) is not None]
        for cand, where in candidates:
            score = len(known & set(cand))
            if score > best_score:
                best, best_where, best_score = cand, where, score
    return best, best_where


def beside_config(path: Path) -> dict | None:
    """``config.json`` in the folder of ``path``, when there is one."""
    config_path = path.parent / "config.json"
    if not config_path.is_file():
        return None
    try:
        config = json.loads(config_path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
        raise CheckpointError(f"cannot read {config_path}: {exc}; it must be a JSON object of the model's config") \
            from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_path} is not a JSON object; write the model's config as {{\"key\": value}}")
    return config


def normalise_state(state: dict, notices: list[str], where: str) -> dict:
    """Remove wrapper prefixes from the keys and cast half-precision tensors to float32."""
    import torch

    removed = set()
    out = {}
    for key, tensor in state.items():
        while key.startswith(tuple(WRAPPER_PREFIXES)):
            prefix = next(p for p in WRAPPER_PREFIXES if key.startswith(p))
            removed.add(prefix)
            key = key[len(prefix):]
        out[key] = tensor
    if removed:
        notices.append(f"{where}: removed the key prefixes " + ", ".join(
            f"'{p}' ({WRAPPER_PREFIXES[p]})" for p in sorted(removed)))
    # One more wrapper level (e.g. Lightning's 'model.') when the keys are not a known model's.
    if detect_model_type(out) is None:
        heads = {k.split(".", 1)[0] for k in out}
        if len(heads) == 1 and all("." in k for k in out):
            inner = {k.split(".", 1)[1]: v for k, v in out.items()}
            if detect_model_type(inner) is not None:
                notices.append(f"{where}: removed the key prefix '{heads.pop()}.'")
                out = inner
    half = sorted({str(t.dtype).removeprefix("torch.") for t in out.values()
                   if t.dtype in (torch.float16, torch.bfloat16)})
    if half:
        notices.append(f"{where}: weights stored as {' and '.join(half)} were cast to float32 "
                       "(export, parity and int8 run from float32)")
        out = {k: v.float() if v.dtype in (torch.float16, torch.bfloat16) else v for k, v in out.items()}
    return out


def detect_model_type(state: dict) -> str | None:
    """Which swarmedge model a state dict's keys belong to, or None."""
    if "embedding.embed.weight" in state:
        return "swarmformer"
    if any(k.startswith("encoder_layers.") and ".self_attn." in k for k in state):
        return "boids"
    return None


def _type_from_config(config: dict | None) -> str | None:
    if not config:
        return None
    if "vocab_size" in config or "T_local" in config:
        return "swarmformer"
    if "dim_feedforward" in config or "habitat_scaling" in config:
        return "boids"
    return None


def _indices(state: dict, prefix: str) -> list[int]:
    return sorted({int(k[len(prefix):].split(".", 1)[0]) for k in state
                   if k.startswith(prefix) and k[len(prefix):].split(".", 1)[0].isdigit()})


def from_weights(model_type: str, state: dict) -> dict:
    """Config values the weights determine (embedding rows, layer count, widths)."""
    if model_type == "swarmformer":
        out = {}
        if "embedding.embed.weight" in state and state["embedding.embed.weight"].dim() == 2:
            out["vocab_size"], out["d_model"] = state["embedding.embed.weight"].shape
        if _indices(state, "layers."):
            out["num_layers"] = _indices(state, "layers.")[-1] + 1
        if "classifier.weight" in state and state["classifier.weight"].dim() == 2:
            out["num_classes"] = state["classifier.weight"].shape[0]
        return {k: int(v) for k, v in out.items()}
    out = {}
    w = state.get("encoder_layers.0.linear1.weight")
    if w is not None and w.dim() == 2:
        out["dim_feedforward"], out["d_model"] = int(w.shape[0]), int(w.shape[1])
    return out


def resolve_config(model_type: str, raw: dict | None, state: dict, where: str, path: Path,
                   notices: list[str]) -> tuple[dict, dict]:
    """(config for ``swarmedge.models.build``, state dict) from a foreign config and the weights.

    Known keys are kept (aliases renamed), the rest (batch_size, learning_rate, …) ignored;
    values the weights determine fill what the config lacks; what neither has is an error
    naming the keys and where to add them.
    """
    from swarmedge.checkpoint import MODEL_NAMES
    from swarmedge.models import MODELS

    fields = set(MODELS[model_type][0].__dataclass_fields__)
    aliases = ALIASES.get(model_type, {})
    config = {}
    for key, value in (raw or {}).items():
        key = aliases.get(key, key)
        if key in fields and key not in config:
            config[key] = value
    inferred = from_weights(model_type, state)
    if model_type == "boids":
        distinct = len(_indices(state, "encoder_layers."))
        if "blocks" not in config and distinct > 1:
            config["blocks"] = distinct
        if "recurrent" not in config and "blocks" in config:
            config["recurrent"] = distinct == 1 and config["blocks"] > 1
        if config.get("recurrent") and distinct > 1:
            state = dedupe_recurrent(state)
        if "digits" not in config:
            notices.append(f"{path.name}: the config names no 'digits'; the labels default to 5, 6 "
                           "(add \"digits\": [a, b] if the model was trained on other digits)")
    read = {k: v for k, v in inferred.items() if k not in config}
    config.update(read)
    missing = [k for k in NEEDED[model_type] if k not in config]
    if missing:
        known = ", ".join(f"{k} {v}" for k, v in read.items())
        known = f" ({known} are read from the weights)" if known else ""
        example = "{" + ", ".join(f'"{k}": …' for k in missing) + "}"
        if raw is None:
            raise CheckpointError(
                f"{path} holds {MODEL_NAMES[model_type]} weights but no config (none under 'params', 'config', "
                f"'hparams', … nor a config.json beside it): add {', '.join(missing)}"
                f"{known} as a config.json beside it, e.g. {example}, or re-save it as "
                f"{{'model_state_dict': state_dict, 'params': {example}}}"
            )
        raise CheckpointError(f"{path}: {where} lacks {', '.join(missing)}{known}; "
                              f"add {'it' if len(missing) == 1 else 'them'} there, e.g. {example}")
    return config, state


def dedupe_recurrent(state: dict) -> dict:
    """The reference repeats the shared block under encoder_layers.1..N-1; keep one copy."""
    import torch

    first = {k: v for k, v in state.items() if k.startswith("encoder_layers.0.")}
    for k, v in state.items():
        if k.startswith("encoder_layers.") and not k.startswith("encoder_layers.0."):
            twin = "encoder_layers.0." + k.split(".", 2)[2]
            if twin not in first or not torch.equal(first[twin], v):
                raise CheckpointError(f"recurrent checkpoint has a block that differs from block 0: {k}; "
                                      "set \"recurrent\": false in its config if its blocks are distinct")
    return {**first, **{k: v for k, v in state.items() if not k.startswith("encoder_layers.")}}


def read_reference(path: Path) -> tuple[dict, dict, Path]:
    """(config.json's dict, state dict, folder) of the reference model.safetensors + config.json."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights = path / "model.safetensors" if path.is_dir() else path
    config_path = weights.parent / "config.json"
    for p in (weights, config_path):
        if not p.is_file():
            raise InputError(f"{p} not found: a reference checkpoint is model.safetensors + config.json")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"cannot read reference checkpoint {weights.parent}: {exc}") from None
    return beside_config(weights), state, weights.parent


def model_type_of(state: dict, config: dict | None, path: Path) -> str:
    """The model type from the state dict's keys, else from the config's keys (as the reference loader)."""
    model_type = detect_model_type(state) or _type_from_config(config)
    if model_type is None:
        keys = ", ".join(list(state)[:4])
        raise CheckpointError(
            f"{path}: the weights are neither a SwarmFormer's nor a boid model's (keys: {keys}, …); "
            "swarmedge exports models built from swarmedge.models or the reference SwarmFormer"
        )
    return model_type
