"""Evaluate a checkpoint (PyTorch) or a bundle (onnxruntime) on a labelled test set."""

from pathlib import Path

import numpy as np

from swarmedge.errors import InputError
from swarmedge.metrics import classification_report


def evaluate_model(model: Path, data: str, data_dir: Path | None = None, precision: str | None = None,
                   limit: int | None = None, seed: int = 0, batch_size: int = 256,
                   on_step=lambda stage: None) -> dict:
    """Metrics of ``model`` on the test split of ``data`` (mnist, imdb or your own labelled data).

    ``on_step(stage)`` is called as each stage starts (reading the data, then every tenth or so
    of the inputs classified), for progress.
    """
    model = Path(model)
    is_bundle = model.is_dir() and (model / "manifest.json").is_file()
    notes: list[str] = []
    on_step(f"read {data}")
    if is_bundle:
        from swarmedge.manifest import read_manifest
        from swarmedge.runtimes import Classifier

        manifest = read_manifest(model)
        ds = load_test_set(data, manifest["labels"], data_dir, limit, seed, manifest["preprocessing"]["kind"])
        clf = Classifier(model, precision=precision, batch_size=batch_size)
        classify = clf.classify_texts if ds.kind == "text" else clf.classify_images
        preds = []
        for start, stop in _chunks(len(ds.labels)):  # scores do not depend on the chunking (batch-invariant)
            on_step(f"classify {start:,}-{stop:,} of {len(ds.labels):,} inputs")
            preds += classify(ds.inputs[start:stop])
        scores, engine = np.array([p.scores for p in preds], dtype=np.float32), f"onnxruntime {clf.computation}"
        temperature = (manifest.get("calibration") or {}).get("temperature")
    else:
        from swarmedge.checkpoint import load_checkpoint

        if precision is not None and precision.strip().lower() != "fp32":
            raise InputError(f"--precision {precision} applies to bundles; {model} is a checkpoint, evaluated with "
                             f"PyTorch in fp32: export it (swarmedge export {model}) and evaluate the bundle")
        ckpt = load_checkpoint(model, notices=notes)  # what reading its layout converted
        ds = load_test_set(data, ckpt["labels"], data_dir, limit, seed, ckpt["preprocessing"]["kind"])
        on_step(f"classify {len(ds.labels):,} inputs with PyTorch")
        scores, engine = torch_scores(ckpt, ds, batch_size), "pytorch fp32"
        temperature = (ckpt["metadata"].get("calibration") or {}).get("temperature")
    predicted = scores.argmax(1)
    report = classification_report(ds.labels, predicted, ds.label_names)
    report.update(model=str(model), engine=engine, data=ds.source, predictions=predicted.tolist(),
                  scores=scores.tolist(), notes=[*notes, *ds.notes])
    report["calibration"] = _calibration(scores, ds.labels, temperature)
    return report


def _calibration(scores: np.ndarray, labels: np.ndarray, temperature: float | None) -> dict:
    """How well the probabilities the model reports match its accuracy here (ECE, NLL), and
    which probabilities those are: temperature-scaled, or the plain softmax."""
    from swarmedge.calibration import calibration_figures

    out = calibration_figures(scores, labels, temperature or 1.0)
    out["probabilities"] = (f"temperature-scaled (T = {temperature:.3f})" if temperature
                            else "plain softmax (no temperature fitted: swarmedge calibrate adds one)")
    return out


# What each kind of model reads, and where to find such data (for the mismatch error).
_READS = {"text": ("texts", "--data imdb, or a .jsonl of {\"text\", \"label\"} records"),
          "images": ("digit images", "--data mnist, or a folder with one sub-folder of images per label")}
_BUILTIN_KIND = {"mnist": "images", "imdb": "text"}


def _chunks(n: int, parts: int = 10, smallest: int = 512) -> list[tuple[int, int]]:
    """About ``parts`` (start, stop) slices of ``n`` inputs, none under ``smallest``: progress steps."""
    size = max(smallest, -(-n // parts))
    return [(s, min(s + size, n)) for s in range(0, n, size)] or [(0, 0)]


def load_test_set(data: str, labels: list[str], data_dir: Path | None = None, limit: int | None = None,
                  seed: int = 0, kind: str | None = None):
    """The test split of ``data`` for a model with ``labels``; a seeded sample when ``limit``.

    ``kind`` ("text", "images" or a bundle's "boids") is what the model reads: data of the other
    kind is refused with an ``InputError`` naming what to pass instead, before a built-in data
    set is loaded (or downloaded).
    """
    from swarmedge.datasets import load_dataset, resolve_data

    kind = {"boids": "images"}.get(kind, kind)
    data, data_dir = resolve_data(str(data), data_dir, kind)
    _check_kind(data, _BUILTIN_KIND.get(data), kind, labels)
    if data == "mnist" and not all(x.isdigit() and int(x) <= 9 for x in labels):  # e.g. trained on cat/ and dog/
        raise InputError(f"this model's classes ({', '.join(labels)}) are not MNIST digits: evaluate it on "
                         "a folder with one sub-folder of images per label")
    digits = [int(x) for x in labels] if data == "mnist" else None
    ds = load_dataset(data, "test", digits=digits, data=data_dir)
    _check_kind(data, ds.kind, kind, labels)
    if limit and limit < len(ds):
        ds = ds.subset(np.sort(np.random.default_rng(seed).choice(len(ds), limit, replace=False)))
    return align_labels(ds, labels)


def _check_kind(data: str, data_kind: str | None, model_kind: str | None, labels: list[str]) -> None:
    if data_kind is None or model_kind is None or data_kind == model_kind:
        return
    raise InputError(f"{data} holds {_READS[data_kind][0]}, but this model classifies {_READS[model_kind][0]} "
                     f"(labels {', '.join(labels)}): pass {_READS[model_kind][1]}")


def align_labels(ds, labels: list[str]):
    """``ds`` relabelled in the model's classes ``labels``; ``ds.notes`` says how, if it had to.

    The data's label names are matched to the model's labels by name first (data may hold
    only some of the classes, e.g. only positive reviews); failing that, labels that are all
    integers in ``0..len(labels)-1`` are read as class indices, as in the IMDB JSONL files
    (0 = negative, 1 = positive). Raises ``InputError`` naming the labels that fit neither.
    """
    from swarmedge.datasets import Dataset

    names = list(ds.label_names)
    if names == labels:
        return ds
    if set(names) <= set(labels):
        mapping, how = [labels.index(n) for n in names], None
    elif all(n.strip().isdigit() and int(n) < len(labels) for n in names):
        mapping = [int(n) for n in names]
        how = "read the data's labels as class indices: " + ", ".join(
            f"{int(n)} = {labels[int(n)]}" for n in sorted(names, key=int))
    else:
        unknown = [n for n in names if n not in labels]
        raise InputError(
            f"the data's labels {unknown} are not among the model's labels {labels}"
            + (f" (as class indices, {[n for n in names if int(n) >= len(labels)]} exceed 0..{len(labels) - 1})"
               if all(n.strip().isdigit() for n in names) else "")
            + f"; label the data with those names, or with class indices 0..{len(labels) - 1}"
        )
    return Dataset(ds.inputs, np.asarray(mapping, dtype=np.int64)[ds.labels], list(labels), ds.kind, ds.source,
                   [*ds.notes, *([how] if how else [])])


def torch_scores(ckpt: dict, ds, batch_size: int = 256) -> np.ndarray:
    """(N, C) float32 class scores of ``ds``'s inputs from the checkpoint's PyTorch model."""
    import torch

    from swarmedge.checkpoint import build_model
    from swarmedge.training.tasks import BoidsTask, SwarmFormerTask

    model = build_model(ckpt)
    task = (SwarmFormerTask(model, ckpt["preprocessing"]) if ckpt["model_type"] == "swarmformer"
            else BoidsTask(model, ckpt["preprocessing"]))
    encoded = task.encode(ds.inputs)
    out = []
    with torch.no_grad():
        for s in range(0, len(ds), batch_size):
            idx = np.arange(s, min(s + batch_size, len(ds)))
            out.append(task.scores(task.collate(encoded, idx)).numpy())
    return np.concatenate(out)
