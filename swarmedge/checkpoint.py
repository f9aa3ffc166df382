"""swarmedge's self-describing checkpoints, and the reference (safetensors) layout.

A swarmedge ``.pt`` is a dict of plain types and tensors, so it loads with
``torch.load(weights_only=True)``: a file that needs more (pickled code) is refused and
its payload never runs. ``swarmedge export model.pt`` needs no model flags because the
checkpoint carries model type, config, labels and preprocessing.
"""

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


def output_count(model_type: str, config: dict) -> int:
    """How many classes the model of ``config`` scores (its output width)."""
    if model_type == "swarmformer":
        return int(config.get("num_classes", 2))
    return len(config.get("digits", (5, 6)))


def check_labels(checkpoint: dict, path) -> None:
    """Raise ``CheckpointError`` unless the checkpoint has one label name per model output.

    A model scoring 2 classes with 1 label would export a bundle that cannot be opened, or
    name its answers wrongly; refused here so every command says so before any work.
    """
    labels = checkpoint.get("labels")
    if not isinstance(labels, (list, tuple)) or not all(isinstance(x, str) for x in labels):
        raise CheckpointError(f"{path}: 'labels' must be a list of class names, got {type(labels).__name__}")
    width = output_count(checkpoint["model_type"], checkpoint["config"])
    if len(labels) != width:
        raise CheckpointError(
            f"{path}: the model scores {width} classes but the checkpoint has {len(labels)} label"
            f"{'' if len(labels) == 1 else 's'} ({', '.join(labels) or 'none'}); it cannot be exported or run: "
            "retrain it (`swarmedge train` sizes the outputs from the data's labels) or set one label per class")


def check_config(checkpoint: dict, path) -> None:
    """Raise ``CheckpointError`` (one line) for a config that is not a dict, has wrong types, or
    describes a model too big to build or export (``swarmedge.limits``), before anything
    is allocated: a file claiming ``blocks=10**12`` would otherwise hang the exporter."""
    from swarmedge.models import config_from_dict

    config = checkpoint.get("config")
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: 'config' must be a dict of model settings, got {type(config).__name__}")
    try:
        config_from_dict(checkpoint["model_type"], config)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: {exc}") from None


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


def load_checkpoint(path: Path, vocab: Path | None = None, notices: list[str] | None = None) -> dict:
    """Load a checkpoint in any layout swarmedge accepts into the swarmedge checkpoint dict.

    Layouts (``swarmedge.checkpoint_layouts``): swarmedge's own ``.pt``; training-loop dicts
    (weights under ``model_state_dict``/``state_dict``/``model``, config under ``params``/
    ``config``/``hparams``/``model_args``/``args``; optimizer state ignored); a bare state dict
    with ``config.json`` beside it; the reference ``model.safetensors`` + ``config.json``.
    Keys prefixed ``module.``/``_orig_mod.`` are unwrapped, fp16/bf16 weights cast to float32,
    GPU-saved tensors mapped to the CPU. Text models take their tokenizer from the checkpoint,
    else ``vocab``, else ``tokenizer.json``/``vocab.txt`` beside the weights, else bert's vocab
    (``datasets.vocab``: $SWARMEDGE_DATA, the cache, else downloaded into it).

    Before anything is built, every layout is checked: one label per model output, finite
    weights, a tokenizer no larger than the embedding, a config ``vocab_size`` equal to the
    embedding's rows, and weights that fit the config (missing, unexpected and wrong-shape keys named).

    Raises ``InputError`` (missing file or tokenizer) or ``CheckpointError`` (anything else), each
    one line naming the problem and the fix; never unpickles code. What was converted (prefixes,
    dtype, ignored training state, a vocabulary smaller than the embedding) is appended to
    ``notices`` and recorded in ``metadata["notices"]``.

    >>> load_checkpoint(Path("train_ckpt.pt"), vocab=Path("vocab.txt"))["model_type"]  # doctest: +SKIP
    'swarmformer'
    """
    from swarmedge import checkpoint_layouts as layouts
    from swarmedge.torch_file import read_torch_file

    require_extra("torch", "export")
    notices = [] if notices is None else notices
    first_notice = len(notices)
    path = Path(path)
    if not path.exists():
        raise InputError(f"model not found: {path} (check the path; an untrained one to try things with: "
                         f"swarmedge init swarmformer|boids -o {path})")
    path = model_file(path)
    if path.is_dir() or path.suffix == ".safetensors":
        raw, state, folder = layouts.read_reference(path)
        checkpoint = _from_parts(path, "reference checkpoint", state, raw, "config.json", folder, vocab, notices)
    else:
        obj = read_torch_file(path)
        if isinstance(obj, dict) and obj.get("format") == FORMAT:
            checkpoint = _validated(obj, path)
        else:
            parts = layouts.checkpoint_from_object(obj, path, notices)
            if parts.get("format") == FORMAT:  # swarmedge's own resume file
                checkpoint = _validated(parts, path)
            else:
                config, where = parts["config"], parts["config_from"]
                if config is None:
                    config = layouts.beside_config(path)
                    where = "config.json beside it" if config is not None else None
                checkpoint = _from_parts(path, parts["layout"], parts["state"], config, where, path.parent,
                                         vocab, notices, parts["extras"])
        if "layout" not in checkpoint["metadata"]:  # swarmedge's own: its tokenizer travels with it
            checkpoint["state_dict"] = layouts.normalise_state(checkpoint["state_dict"], notices, path.name)
            if vocab is not None and checkpoint["model_type"] == "swarmformer":
                notices.append(f"--vocab {vocab} ignored: {path.name} carries the tokenizer it was trained with")
    check_config(checkpoint, path)
    check_labels(checkpoint, path)
    check_finite(checkpoint["state_dict"], path)
    if checkpoint["model_type"] == "swarmformer":
        _check_vocabulary(checkpoint, path, notices)
    problem = state_dict_mismatch(checkpoint["model_type"], checkpoint["config"], checkpoint["state_dict"])
    if problem:
        where = checkpoint["metadata"].get("config_from") or "its config"
        raise CheckpointError(f"{path}: the weights do not match {where}: {problem}")
    if len(notices) > first_notice:
        checkpoint["metadata"] = {**checkpoint["metadata"], "notices": notices[first_notice:]}
    return checkpoint


MODEL_NAMES = {"swarmformer": "SwarmFormer", "boids": "boid model"}


def model_file(path: Path) -> Path:
    """A model folder as what it holds: ``model.pt`` (the zoo's layout), else the folder itself
    (the reference ``model.safetensors`` + ``config.json``). A folder holding neither is an
    InputError naming both layouts."""
    path = Path(path)
    if not path.is_dir() or (path / "model.safetensors").is_file():
        return path
    if (path / "model.pt").is_file():
        return path / "model.pt"
    if (path / "manifest.json").is_file():
        raise InputError(f"{path} is a bundle (an exported model); this needs the checkpoint it was exported from")
    raise InputError(f"{path} holds no model: a model folder holds model.pt, or model.safetensors + config.json")


def _validated(checkpoint, path: Path) -> dict:
    from swarmedge.models import MODELS

    if checkpoint.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format {checkpoint.get('format_version')}; "
                              f"this swarmedge reads {FORMAT_VERSION}")
    if checkpoint.get("model_type") not in MODELS:
        raise CheckpointError(f"{path}: unknown model type {checkpoint.get('model_type')!r}; "
                              f"known: {', '.join(MODELS)}")
    for key in ("config", "labels", "preprocessing", "state_dict"):
        if key not in checkpoint:
            raise CheckpointError(f"{path} lacks '{key}'; it was not written by swarmedge")
    return {**checkpoint, "metadata": dict(checkpoint.get("metadata") or {})}


def _from_parts(path: Path, layout: str, state: dict, raw_config: dict | None, where: str | None, folder: Path,
                vocab: Path | None, notices: list[str], extras: dict | None = None) -> dict:
    """A swarmedge checkpoint dict from foreign weights and config (see ``checkpoint_layouts``)."""
    from swarmedge import checkpoint_layouts as layouts
    from swarmedge.models import config_from_dict

    state = layouts.normalise_state(state, notices, path.name)
    model_type = layouts.model_type_of(state, raw_config, path)
    config, state = layouts.resolve_config(model_type, raw_config, state, where, path, notices)
    rows = _embedding_rows(state)
    if model_type == "swarmformer" and rows is not None and config["vocab_size"] != rows:
        raise CheckpointError(f"{path}: {where} says vocab_size {config['vocab_size']} but the embedding has "
                              f"{rows} rows; set vocab_size to {rows} there")
    try:
        config = config_from_dict(model_type, config).to_dict()
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: {exc} (config from {where})") from None
    metadata = {"swarmedge_version": __version__, "source": f"{layout} {path.name}", "layout": layout,
                "config_from": where or "the weights"}
    tokenizer_json = None
    if model_type == "swarmformer":
        tokenizer_json, metadata["tokenizer"] = _tokenizer_for(folder, vocab)
    training = {k: v for k, v in (extras or {}).items() if isinstance(v, (int, float, str, bool))}
    if training:
        metadata["training"] = training
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_type": model_type,
        "config": config,
        "labels": default_labels(model_type, config),
        "preprocessing": preprocessing_for(model_type, config, tokenizer_json),
        "state_dict": state,
        "metadata": metadata,
    }


def check_finite(state_dict: dict, path) -> None:
    """Raise ``CheckpointError`` naming the tensors that hold NaN or infinity."""
    import torch

    bad = []
    for key, tensor in state_dict.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            nan, inf = int(tensor.isnan().sum()), int(tensor.isinf().sum())
            bad.append(f"{key} ({', '.join(f'{n} {w}' for n, w in ((nan, 'NaN'), (inf, 'inf')) if n)})")
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise CheckpointError(f"{path} has non-finite weights: {', '.join(bad[:3])}{more}; the training diverged "
                              "or the file is damaged: use an earlier checkpoint or retrain")


def _embedding_rows(state: dict) -> int | None:
    weight = state.get("embedding.embed.weight")
    return int(weight.shape[0]) if weight is not None and weight.dim() == 2 else None


def _check_vocabulary(checkpoint: dict, path: Path, notices: list[str]) -> None:
    """The tokenizer's ids must all index the embedding, and the config must agree with it."""
    from swarmedge.tokenizer import id_count

    rows = _embedding_rows(checkpoint["state_dict"])
    if rows is None:
        return  # no embedding: the fit check names the missing key
    configured = checkpoint["config"]["vocab_size"]
    where = checkpoint["metadata"].get("config_from") or "its config"
    source = checkpoint["metadata"].get("tokenizer") or "the checkpoint's tokenizer"
    ids = id_count(checkpoint["preprocessing"]["tokenizer"])
    if ids > rows:
        raise CheckpointError(
            f"{path}: {source} has {ids} tokens but the model's embedding has {rows} rows ({where} vocab_size "
            f"{configured}): token ids {rows}..{ids - 1} would index past it; pass the vocabulary the model "
            "was trained with (--vocab, or vocab.txt beside the weights)"
        )
    if configured != rows:
        raise CheckpointError(f"{path}: {where} says vocab_size {configured} but the embedding has {rows} rows; "
                              f"set vocab_size to {rows}")
    if ids < rows:
        notices.append(f"{source} has {ids} tokens, the embedding {rows} rows: rows {ids}..{rows - 1} are never used")


def state_dict_mismatch(model_type: str, config: dict, state_dict: dict) -> str | None:
    """One line naming the keys of ``state_dict`` that do not fit ``config``'s model, or None.

    Missing, unexpected and wrong-shape keys are counted and the first few named.
    """
    import torch

    from swarmedge.models import build

    try:
        with torch.device("meta"):  # shapes only: nothing is allocated or initialised
            expected = {k: tuple(v.shape) for k, v in build(model_type, config).state_dict().items()}
    except (ValueError, TypeError) as exc:
        return f"the config is not valid ({exc})"
    got = {k: tuple(v.shape) for k, v in state_dict.items()}
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    shapes = [f"{k} expected {list(expected[k])} got {list(got[k])}" for k in expected
              if k in got and got[k] != expected[k]]
    parts = [f"{len(keys)} {what} ({', '.join(keys[:3])}{', …' if len(keys) > 3 else ''})"
             for what, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)) if keys]
    if not parts:
        return None
    return "; ".join(parts) + " (the config must describe the trained model: check num_layers, d_model, …)"


def build_model(checkpoint: dict):
    """The torch model of ``checkpoint`` with its weights loaded (strict), in eval mode.

    Raises ``CheckpointError`` naming the keys that differ when the weights do not fit the config.
    """
    from swarmedge.models import build

    try:
        model = build(checkpoint["model_type"], checkpoint["config"])
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"checkpoint config is not valid: {exc}") from None
    problem = state_dict_mismatch(checkpoint["model_type"], checkpoint["config"], checkpoint["state_dict"])
    if problem:
        raise CheckpointError(f"checkpoint does not match its config: {problem}")
    try:
        model.load_state_dict(checkpoint["state_dict"], strict=True)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint does not match its config: {str(exc).splitlines()[0]}") from None
    return model.eval()


def _tokenizer_for(folder: Path, vocab: Path | None) -> tuple[str, str]:
    """(tokenizer JSON, where it came from): --vocab, then beside the weights, then bert's vocab."""
    from swarmedge.tokenizer import wordpiece_from_vocab

    if vocab is not None:
        return wordpiece_from_vocab(vocab), Path(vocab).name
    if (folder / "tokenizer.json").is_file():
        return (folder / "tokenizer.json").read_text(encoding="utf-8"), "tokenizer.json"
    if (folder / "vocab.txt").is_file():
        return wordpiece_from_vocab(folder / "vocab.txt"), "vocab.txt"
    default = default_vocab()
    return wordpiece_from_vocab(default), f"{default.name} (the default: {folder} has no tokenizer.json or vocab.txt)"


def default_vocab() -> Path:
    """bert-base-uncased's vocab.txt, in the data search order or downloaded (``datasets.vocab``)."""
    from swarmedge.datasets.vocab import bert_vocab

    return bert_vocab()


def init_checkpoint(model_type: str, config: dict, seed: int = 0, vocab: Path | None = None,
                    tokenizer_json: str | None = None, truncation: str = "head") -> dict:
    """A freshly initialised checkpoint, to try the pipeline before training exists."""
    import torch

    from swarmedge.models import build
    from swarmedge.tokenizer import vocab_size, wordpiece_from_vocab

    if model_type == "swarmformer" and tokenizer_json is None:
        tokenizer_json = wordpiece_from_vocab(vocab or default_vocab())
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
