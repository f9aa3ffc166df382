"""swarmedge's self-describing checkpoints, and the reference (safetensors) layout.

A swarmedge ``.pt`` is a dict of plain types and tensors, so it loads with
``torch.load(weights_only=True)``: a file that needs more (pickled code) is refused and
its payload never runs. ``swarmedge export model.pt`` needs no model flags because the
checkpoint carries model type, config, labels and preprocessing.
"""

import json
import os
from pathlib import Path

from swarmedge import __version__
from swarmedge.errors import CheckpointError, InputError, require_extra

FORMAT = "swarmedge.checkpoint"
FORMAT_VERSION = 1
SENTIMENT_LABELS = ["negative", "positive"]


def preprocessing_for(model_type: str, config: dict, tokenizer_json: str | None = None,
                      truncation: str = "head") -> dict:
    """What the device must do to raw inputs before the ONNX model sees them."""
    if model_type == "swarmformer":
        if tokenizer_json is None:
            raise CheckpointError("a SwarmFormer checkpoint needs a tokenizer: pass --vocab VOCAB.txt")
        return {
            "kind": "text",
            "tokenizer": tokenizer_json,
            "seq_len": config["seq_len"],
            "multiple_of": config["cluster_size"],
            "pad_id": 0,
            "truncation": truncation,  # which tokens of a long text are kept (runtimes.text)
        }
    return {
        "kind": "boids",
        "image_size": 28,
        "threshold": 0.5,  # pixels above this (on a 0..1 scale) become boids
        "habitat_scaling": config["habitat_scaling"],
    }


def default_labels(model_type: str, config: dict) -> list[str]:
    if model_type == "swarmformer":
        return list(SENTIMENT_LABELS) if config.get("num_classes", 2) == 2 else [
            str(i) for i in range(config["num_classes"])
        ]
    return [str(d) for d in config["digits"]]


def make_checkpoint(model, model_type: str, labels: list[str], preprocessing: dict, **metadata) -> dict:
    """The checkpoint dict for ``model`` (plain types + a state dict of tensors)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_type": model_type,
        "config": model.config.to_dict(),
        "labels": list(labels),
        "preprocessing": preprocessing,
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "metadata": {"swarmedge_version": __version__, **metadata},
    }


def save_checkpoint(checkpoint: dict, path: Path) -> None:
    """``torch.save`` atomically: a crash never leaves a truncated file in place."""
    import io

    import torch

    from swarmedge.atomic import write_bytes

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path, vocab: Path | None = None) -> dict:
    """Load a swarmedge ``.pt`` or a reference-layout checkpoint into the checkpoint dict.

    Reference layout: ``model.safetensors`` + ``config.json`` (a directory holding both, or
    the ``.safetensors`` file with ``config.json`` beside it). Text models also need a
    vocabulary: ``tokenizer.json`` or ``vocab.txt`` beside the weights, or ``vocab``.
    """
    require_extra("torch", "export")
    path = Path(path)
    if not path.exists():
        raise InputError(f"model not found: {path} (create one with: swarmedge init swarmformer -o {path})")
    if path.is_dir() or path.suffix == ".safetensors":
        return _load_reference(path, vocab)
    checkpoint = _torch_load(path)
    return _validated(checkpoint, path)


def _torch_load(path: Path) -> dict:
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = next((ln.strip() for ln in str(exc).splitlines() if "GLOBAL" in ln or "global" in ln), None)
        if detail is None:
            raise CheckpointError(
                f"{path} is not a readable PyTorch checkpoint (corrupt, or a pickle that is not plain weights); "
                "check the file or create one with: swarmedge init"
            ) from None
        raise CheckpointError(
            f"refusing to load {path}: it holds pickled Python objects, not just weights "
            f"({detail.removeprefix('WeightsUnpickler error: ')[:160]}); "
            "re-save it as a state dict, or pass its model.safetensors + config.json"
        ) from None
    except Exception as exc:  # torch.load raises many types (struct.error, RuntimeError, …) on junk
        why = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint ({why}); "
            "check the file or create one with: swarmedge init"
        ) from None


def _validated(checkpoint, path: Path) -> dict:
    from swarmedge.models import MODELS

    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a swarmedge checkpoint (a bare state dict has no config); "
            "pass the reference model.safetensors + config.json, or create one with: swarmedge init"
        )
    if checkpoint.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format {checkpoint.get('format_version')}; "
                              f"this swarmedge reads {FORMAT_VERSION}")
    if checkpoint.get("model_type") not in MODELS:
        raise CheckpointError(f"{path}: unknown model type {checkpoint.get('model_type')!r}; "
                              f"known: {', '.join(MODELS)}")
    for key in ("config", "labels", "preprocessing", "state_dict"):
        if key not in checkpoint:
            raise CheckpointError(f"{path} lacks '{key}'; it was not written by swarmedge")
    return checkpoint


def build_model(checkpoint: dict):
    """The torch model of ``checkpoint`` with its weights loaded (strict), in eval mode."""
    from swarmedge.models import build

    try:
        model = build(checkpoint["model_type"], checkpoint["config"])
        model.load_state_dict(checkpoint["state_dict"], strict=True)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint does not match its config: {str(exc).splitlines()[0]}") from None
    return model.eval()


def _load_reference(path: Path, vocab: Path | None) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights = path / "model.safetensors" if path.is_dir() else path
    config_path = weights.parent / "config.json"
    for p in (weights, config_path):
        if not p.is_file():
            raise InputError(f"{p} not found: a reference checkpoint is model.safetensors + config.json")
    try:
        ref_config = json.loads(config_path.read_text(encoding="utf-8"))
        state = load_file(str(weights))
    except (json.JSONDecodeError, UnicodeDecodeError, SafetensorError, OSError) as exc:
        raise CheckpointError(f"cannot read reference checkpoint {weights.parent}: {exc}") from None
    if "vocab_size" in ref_config:
        model_type, config = "swarmformer", _swarmformer_config(ref_config)
        tokenizer_json = _reference_tokenizer(weights.parent, vocab)
    elif "dim_feedforward" in ref_config or "habitat_scaling" in ref_config:
        model_type, config, state = "boids", *_boids_config(ref_config, state)
        tokenizer_json = None
    else:
        raise CheckpointError(f"{config_path} describes neither a SwarmFormer nor a boid model")
    from swarmedge.models import config_from_dict

    try:
        config = config_from_dict(model_type, config).to_dict()
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{config_path}: {exc}") from None
    return _validated({
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_type": model_type,
        "config": config,
        "labels": default_labels(model_type, config),
        "preprocessing": preprocessing_for(model_type, config, tokenizer_json),
        "state_dict": state,
        "metadata": {"swarmedge_version": __version__, "source": f"reference checkpoint {weights.parent.name}"},
    }, path)


def _swarmformer_config(ref: dict) -> dict:
    keys = ("vocab_size", "d_model", "seq_len", "cluster_size", "num_layers", "T_local")
    return {k: ref[k] for k in keys if k in ref}


def _boids_config(ref: dict, state: dict) -> tuple[dict, dict]:
    rename = {"num_layers": "blocks"}
    known = ("d_model", "nhead", "num_layers", "blocks", "recurrent", "dim_feedforward",
             "residual_scaling", "habitat_scaling", "digits")
    config = {rename.get(k, k): ref[k] for k in known if k in ref}
    if config.get("recurrent", True):
        # The reference repeats the shared block under encoder_layers.1..N-1; keep one copy.
        import torch

        first = {k: v for k, v in state.items() if k.startswith("encoder_layers.0.")}
        for k, v in state.items():
            if not k.startswith("encoder_layers.0."):
                twin = "encoder_layers.0." + k.split(".", 2)[2]
                if twin not in first or not torch.equal(first[twin], v):
                    raise CheckpointError(f"recurrent checkpoint has a block that differs from block 0: {k}")
        state = first
    return config, state


def _reference_tokenizer(folder: Path, vocab: Path | None) -> str:
    from swarmedge.tokenizer import wordpiece_from_vocab

    if vocab is not None:
        return wordpiece_from_vocab(vocab)
    if (folder / "tokenizer.json").is_file():
        return (folder / "tokenizer.json").read_text(encoding="utf-8")
    if (folder / "vocab.txt").is_file():
        return wordpiece_from_vocab(folder / "vocab.txt")
    default = default_vocab()
    if default is not None:
        return wordpiece_from_vocab(default)
    raise InputError(
        f"{folder} has no tokenizer.json or vocab.txt; pass --vocab path/to/bert-base-uncased-vocab.txt"
    )


def default_vocab() -> Path | None:
    """bert-base-uncased's vocab.txt from $SWARMEDGE_DATA, when it is there."""
    root = os.environ.get("SWARMEDGE_DATA")
    if root and (Path(root) / "bert-base-uncased-vocab.txt").is_file():
        return Path(root) / "bert-base-uncased-vocab.txt"
    return None


def init_checkpoint(model_type: str, config: dict, seed: int = 0, vocab: Path | None = None,
                    tokenizer_json: str | None = None, truncation: str = "head") -> dict:
    """A freshly initialised checkpoint, to try the pipeline before training exists."""
    import torch

    from swarmedge.models import build
    from swarmedge.tokenizer import vocab_size, wordpiece_from_vocab

    if model_type == "swarmformer" and tokenizer_json is None:
        vocab = vocab or default_vocab()
        if vocab is None:
            raise InputError("a SwarmFormer needs a WordPiece vocabulary: pass --vocab VOCAB.txt "
                             "(or set SWARMEDGE_DATA to a folder holding bert-base-uncased-vocab.txt)")
        tokenizer_json = wordpiece_from_vocab(vocab)
    if model_type == "swarmformer":
        config = {**config, "vocab_size": vocab_size(tokenizer_json)}
    torch.manual_seed(seed)
    try:
        model = build(model_type, config)
    except (ValueError, TypeError) as exc:
        raise InputError(f"bad {model_type} config: {exc}") from None
    cfg = model.config.to_dict()
    return make_checkpoint(model, model_type, default_labels(model_type, cfg),
                           preprocessing_for(model_type, cfg, tokenizer_json, truncation), source="init", seed=seed)
