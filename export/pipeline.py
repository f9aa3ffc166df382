"""checkpoint -> bundle: export, parity check, int8, agreement, manifest; all or nothing."""

import datetime as dt
import importlib.metadata
import json
import platform
from collections.abc import Callable
from pathlib import Path

import numpy as np

from swarmedge import __version__
from swarmedge.atomic import staged_directory, write_bytes
from swarmedge.checkpoint import build_model, load_checkpoint
from swarmedge.errors import InputError, ParityError
from swarmedge.export.onnx_export import DEFAULT_OPSET, export_onnx, spec_for
from swarmedge.export.parity import DEFAULT_TOLERANCE, check_parity, int8_agreement
from swarmedge.export.quantize import quantize
from swarmedge.export.rewrites import ALL as ALL_REWRITES
from swarmedge.export.rewrites import rewrite
from swarmedge.export.samples import load_samples, synthetic_samples
from swarmedge.export.targets import resolve, with_overrides
from swarmedge.manifest import FORMAT, FORMAT_VERSION, MANIFEST, PRECISION_FILES, dumps, sha256_file, written_problem
from swarmedge.output_paths import check_bundle_target
from swarmedge.runtimes.feeds import feeds_for

STEPS = ("load", "export", "parity", "quantize", "agreement", "write")
# Below this top-1 agreement with fp32 an int8 model is refused (unless --allow-mismatch): a sound
# int8 export agrees on 99-100% here (zoo models, random inits); static int8 of the boid swarm,
# whose positions span +-10 through ten recurrent steps, agreed on 52% (chance).
MIN_INT8_AGREEMENT = 0.9


def default_bundle_path(model_path: Path) -> Path:
    """Where ``export`` writes without ``-o``: in the current folder, named for the model -
    ``models/small.pt`` -> ``small.bundle``; a model folder ``zoo/boids-5v6/`` (or its
    ``model.pt``) -> ``boids-5v6.bundle``. Never beside the model: that may be a source tree
    or a read-only mount."""
    model_path = Path(model_path).absolute()
    name = model_path.stem if model_path.is_file() else model_path.name
    if model_path.is_file() and name == "model":  # zoo/boids-5v6/model.pt: the folder names it
        name = model_path.parent.name or name
    return Path(f"{name}.bundle")


def export_bundle(
    model_path: Path,
    out: Path | None = None,
    *,
    quantize_mode: str | None = "dynamic",
    target: str = "auto",
    overrides: dict | None = None,
    calibration: Path | None = None,
    method: str = "minmax",
    opset: int = DEFAULT_OPSET,
    tolerance: float = DEFAULT_TOLERANCE,
    allow_mismatch: bool = False,
    vocab: Path | None = None,
    calibration_size: int = 128,
    agreement_size: int = 256,
    seed: int = 0,
    rewrites: tuple[str, ...] = ALL_REWRITES,
    on_step: Callable[[str], None] = lambda step: None,
) -> tuple[Path, dict]:
    """Export ``model_path`` to a bundle directory; return its path and manifest.

    ``quantize_mode``: None (fp32 only), "dynamic" or "static" (needs ``calibration``).
    ``overrides``: per_channel / reduce_range / weight_type replacing the target preset's choices.
    ``rewrites``: exact graph rewrites (``swarmedge.export.rewrites``) applied before export;
    the parity check holds the rewritten graph to the original model.
    Nothing is written unless every step succeeds; an existing bundle is replaced whole, but only
    an empty folder or a bundle holding nothing its manifest does not list (else InputError).

    >>> export_bundle(Path("model.pt"))  # doctest: +SKIP
    (PosixPath('model.bundle'), {...})
    """
    if not 18 <= opset <= 26:
        raise InputError(f"--opset {opset} is outside 18..26 (the dynamo exporter's and onnxruntime's range)")
    if quantize_mode not in (None, "dynamic", "static"):
        raise InputError(f"unknown quantization mode {quantize_mode!r}; choose dynamic or static")
    if quantize_mode == "static" and calibration is None:
        raise InputError("static quantization calibrates on real inputs: pass --calibration DATA "
                         "(or use the default --mode dynamic)")
    preset = with_overrides(resolve(target), **(overrides or {})) if quantize_mode else None
    model_path = Path(model_path)
    out = Path(out) if out else default_bundle_path(model_path)
    check_bundle_target(out)  # before any work; once more right before the swap
    on_step("load")
    checkpoint = load_checkpoint(model_path, vocab=vocab)
    model = build_model(checkpoint)
    model_type, config = checkpoint["model_type"], model.config.to_dict()
    pre = dict(checkpoint["preprocessing"])
    tokenizer_json = pre.pop("tokenizer", None)
    if tokenizer_json is not None:
        pre["tokenizer"] = "tokenizer.json"

    rng = np.random.default_rng(seed)
    samples = (load_samples(calibration, pre["kind"]) if calibration
               else synthetic_samples(pre["kind"], calibration_size + agreement_size, rng, _vocab(tokenizer_json)))
    if calibration and pre["kind"] == "boids":  # blank digits have no boids: nothing to calibrate on
        inked = (samples.raw > pre["threshold"]).any(axis=(1, 2))
        if inked.sum() < len(samples):
            samples.raw = samples.raw[inked]
            samples.source += f" ({int((~inked).sum())} blank of {len(inked)} left out)"
    if calibration and len(samples) < 2:
        raise InputError(f"{calibration} holds {len(samples)} usable input{'s' * (len(samples) != 1)}; "
                         "give at least 2 (half calibrate, half check int8 against fp32)")
    n_cal = min(calibration_size, len(samples) // 2)
    cal, held = samples.split(n_cal, rng)
    held.raw = held.raw[:agreement_size]

    with staged_directory(out, check=check_bundle_target) as stage:
        on_step("export")
        fp32 = stage / PRECISION_FILES["fp32"]
        labels = {"swarmedge.labels": json.dumps(checkpoint["labels"])}
        exported = rewrite(model, rewrites)
        passes = export_onnx(exported, model_type, fp32, opset, metadata=labels)
        passes["rewrites"] = list(getattr(exported, "rewrites", ()))
        on_step("parity")
        parity = check_parity(model, model_type, fp32, tolerance, raise_on_mismatch=not allow_mismatch)
        quant = agreement = None
        if quantize_mode:
            on_step("quantize")
            lengths = _served_lengths(pre) if pre["kind"] == "text" else ()
            cal_feeds = None
            if quantize_mode == "static":
                cal_feeds = feeds_for(cal, pre, tokenizer_json, lengths=lengths, uniform=method != "minmax",
                                      batch_size=min(32, len(cal)))
            quant = quantize(fp32, stage / PRECISION_FILES["int8"], preset, quantize_mode, cal_feeds, method)
            if cal_feeds:
                quant["calibration"] = {"source": cal.source, "inputs": len(cal), "batches": len(cal_feeds),
                                        "lengths": sorted({int(f[next(iter(f))].shape[1]) for f in cal_feeds})}
            on_step("agreement")
            agreement = int8_agreement(fp32, stage / PRECISION_FILES["int8"], feeds_for(held, pre, tokenizer_json),
                                       held.source)
            agreement["ok"] = agreement["top1_agreement"] >= MIN_INT8_AGREEMENT
            if not agreement["ok"] and not allow_mismatch:
                raise ParityError(
                    f"int8 ({quantize_mode}) agrees with fp32 on only {agreement['top1_agreement']:.1%} of "
                    f"{agreement['inputs']} inputs ({held.source}; max |score diff| {agreement['max_abs_diff']:.3g}): "
                    f"its answers would not be the model's; use --mode dynamic, --quantize none, or "
                    "--allow-mismatch to keep it anyway"
                )
        on_step("write")
        if tokenizer_json is not None:
            write_bytes(stage / "tokenizer.json", tokenizer_json.encode("utf-8"))
        spec = spec_for(model_type, config)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "model_type": model_type,
            "config": config,
            "labels": checkpoint["labels"],
            "preprocessing": pre,
            "inputs": _io(model_type, spec.inputs),
            "outputs": _io(model_type, spec.outputs),
            "source": {"checkpoint": model_path.name, "metadata": checkpoint.get("metadata", {})},
            "export": {"exporter": "torch.onnx (dynamo)", "opset": opset, "graph_passes": passes},
            "parity": parity,
            "quantization": quant,
            "int8_vs_fp32": agreement,
            # the device divides the scores by this before the softmax (swarmedge.calibration)
            "calibration": _calibration(checkpoint),
            "versions": _versions(),
            "files": {p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size}
                      for p in sorted(stage.iterdir()) if p.is_file() and not p.name.startswith(".")},
        }
        issue = written_problem(manifest)  # every bundle written opens: checked before it is written
        if issue:
            raise InputError(f"{model_path}: its bundle would not open ({issue}); the model is outside what "
                             "bundles support (docs/BUNDLE.md): retrain it within those bounds")
        write_bytes(stage / MANIFEST, dumps(manifest).encode("utf-8"))
    return out, manifest


def _calibration(checkpoint: dict) -> dict | None:
    c = checkpoint.get("metadata", {}).get("calibration")
    if not c:
        return None
    return {"method": c["method"], "temperature": c["temperature"], "fitted_on": c["fitted_on"],
            "held_out": {"before": c["before"], "after": c["after"]}}


def _served_lengths(pre: dict) -> tuple[int, ...]:
    # The runner pads every text to seq_len; API users may send shorter multiples.
    m, L = pre["multiple_of"], pre["seq_len"]
    return tuple(sorted({max(m, L // 2 // m * m), max(m, L // 4 // m * m)} - {L}))


def _vocab(tokenizer_json: str | None) -> list[str] | None:
    if tokenizer_json is None:
        return None
    return sorted(json.loads(tokenizer_json)["model"]["vocab"])


def _io(model_type: str, names) -> list[dict]:
    shapes = {
        "input_ids": ("int64", ["batch", "length"]),
        "logits": ("float32", ["batch", "classes"]),
        "boids": ("float32", ["batch", "boids", 2]),
        "lengths": ("int64", ["batch"]),
        "scores": ("float32", ["batch", "classes"]),
        "mean_position": ("float32", ["batch", "d_model"]),
        "trajectory": ("float32", ["batch", "blocks+1", "boids", "d_model"]),
    }
    return [{"name": n, "dtype": shapes[n][0], "shape": shapes[n][1]} for n in names]


def _versions() -> dict:
    out = {"swarmedge": __version__, "python": platform.python_version()}
    for pkg in ("torch", "onnx", "onnxruntime", "onnxscript"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out
