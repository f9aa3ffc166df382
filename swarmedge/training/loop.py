"""The training loop: seeded, resumable, logged, keeping the best checkpoint by validation.

Files beside ``out`` (say ``model.pt``):
- ``model.pt``: the best checkpoint so far (by validation accuracy), written atomically;
- ``model.resume.pt``: model + optimizer + schedule + position, written at every epoch
  end and when interrupted (Ctrl-C or SIGTERM), so ``--resume`` continues where it stopped;
- ``model.log.jsonl``: one JSON object per epoch.
"""

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from swarmedge.atomic import sigterm_as_interrupt
from swarmedge.checkpoint import build_model, check_finite, save_checkpoint
from swarmedge.errors import CheckpointError, InputError


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.05  # fraction of all steps with a linear warm-up, then cosine decay to 0
    grad_clip: float = 1.0
    val_fraction: float = 0.1  # carved from train, seeded; the test set is never touched here
    seed: int = 0
    label_smoothing: float = 0.0
    token_dropout: float = 0.0  # SwarmFormer: share of text tokens replaced by [UNK] in each training batch
    init_embeddings: str = "random"  # SwarmFormer: "ppmi" starts from word vectors of the training texts
    augment: str = "none"  # boids: "affine" turns, scales and shifts each training digit at random
    boid_loss: str = "squared"  # boids: "distance" pulls each boid by its unsquared distance (the original's)
    ema: float = 0.0  # decay of an exponential moving average of the weights, validated and kept instead (0: off)


# Settings a resumed run must keep, by option: its data split, batches and loss depend on them,
# and the optimizer and schedule restored from the file carry its lr, weight decay and length, so
# another value would be ignored or would bend the schedule mid-run.
RESUMED_SETTINGS = {"batch_size": "--batch-size", "seed": "--seed", "val_fraction": "val_fraction",
                    "augment": "--augment", "boid_loss": "--loss", "epochs": "--epochs", "lr": "--lr",
                    "weight_decay": "--weight-decay", "label_smoothing": "--label-smoothing",
                    "token_dropout": "--token-dropout", "init_embeddings": "--init-embeddings", "ema": "--ema"}


def side_files(out: Path) -> tuple[Path, Path]:
    out = Path(out)
    return out.with_name(out.stem + ".resume.pt"), out.with_name(out.stem + ".log.jsonl")


def train(checkpoint: dict, dataset, out: Path, config: TrainConfig, resume: bool = False,
          on_epoch: Callable[[dict], None] = lambda row: None, progress: bool = True,
          threads: int | None = None, on_step: Callable[[str], None] = lambda stage: None) -> dict:
    """Train ``checkpoint``'s model on ``dataset``; return the last epoch's log row.

    ``progress``: a tqdm bar on a terminal; ``on_step(stage)`` is also told every tenth of an
    epoch (for progress lines where there is no terminal).

    Refused in one line (``InputError``/``CheckpointError``) before any work: data of the other
    kind, fewer than 2 classes, labels mixing names and integers, too few inputs for the
    validation split, or labels that differ from the checkpoint's (one per model output).
    """
    from tqdm import tqdm

    from swarmedge.checkpoint import check_labels
    from swarmedge.training.setup import check_training_data
    from swarmedge.training.tasks import BOID_LOSSES, BoidsTask, SwarmFormerTask

    wants = "text" if checkpoint["model_type"] == "swarmformer" else "images"
    if dataset.kind != wants:
        raise InputError(f"{dataset.source} holds {dataset.kind}, but a {checkpoint['model_type']} model "
                         f"learns from {wants}")
    check_training_data(dataset, config.val_fraction)
    check_labels(checkpoint, "the starting checkpoint")
    if list(dataset.label_names) != list(checkpoint["labels"]):
        raise InputError(f"the data's labels ({', '.join(dataset.label_names)}) differ from the model's "
                         f"({', '.join(checkpoint['labels'])}): start from a checkpoint made for this data "
                         "(swarmedge train sets the labels from it)")

    if config.epochs < 1 or config.batch_size < 1 or config.lr <= 0:
        raise InputError("epochs, batch size and learning rate must be positive")
    if config.init_embeddings not in ("random", "ppmi"):
        raise InputError(f"unknown embedding initialisation {config.init_embeddings!r}: use random or ppmi")
    if config.init_embeddings != "random" and checkpoint["model_type"] != "swarmformer":
        raise InputError("--init-embeddings applies to SwarmFormer (text) models only")
    if not 0 <= config.ema < 1:
        raise InputError(f"--ema {config.ema}: the average's decay is at least 0 and below 1 (0.99: about the "
                         "last 100 steps)")
    if config.augment not in ("none", "affine"):
        raise InputError(f"unknown augmentation {config.augment!r}: use none or affine")
    if config.augment != "none" and checkpoint["model_type"] != "boids":
        raise InputError("--augment applies to boid (digit) models only")
    if config.boid_loss not in BOID_LOSSES:
        raise InputError(f"unknown boid loss {config.boid_loss!r}: use {' or '.join(BOID_LOSSES)}")
    if config.boid_loss != "squared" and checkpoint["model_type"] != "boids":
        raise InputError("--loss applies to boid (digit) models only")
    torch.set_num_threads(threads or os.cpu_count() or 1)  # all cores unless told otherwise
    torch.manual_seed(config.seed)
    resume_path, log_path = side_files(out)
    model = build_model(checkpoint).train()
    pre = checkpoint["preprocessing"]
    task = (SwarmFormerTask(model, pre, config.label_smoothing, config.token_dropout)
            if checkpoint["model_type"] == "swarmformer"
            else BoidsTask(model, pre, config.augment == "affine", config.boid_loss))
    train_ds, val_ds = dataset.split(config.val_fraction, config.seed)
    x_train, x_val = task.encode(train_ds.inputs), task.encode(val_ds.inputs)
    y_train, y_val = torch.from_numpy(train_ds.labels), torch.from_numpy(val_ds.labels)

    steps_per_epoch = len(task.order(x_train, np.random.default_rng(0), config.batch_size))
    total = steps_per_epoch * config.epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    warm = max(1, int(config.warmup * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / total))))
    # the average after each step (torch's AveragedModel; Polyak & Juditsky 1992): validated and
    # saved instead of the raw weights, whose last steps jitter around what they are settling on
    averaged = (AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema), use_buffers=True)
                if config.ema else None)
    kept = averaged.module if averaged is not None else model
    state = {"epoch": 0, "step": 0, "best": -1.0}
    if resume:
        state = _load_resume(resume_path, model, optimizer, schedule, config, averaged)
    else:
        if config.init_embeddings == "ppmi":
            task.start_from_ppmi(train_ds.inputs, config.seed)
        if log_path.exists():
            log_path.unlink()

    row, t0 = {}, time.time()
    with sigterm_as_interrupt():
        try:
            for epoch in range(state["epoch"], config.epochs):
                model.train()
                batches = task.order(x_train, np.random.default_rng(config.seed * 1000 + epoch), config.batch_size)
                # an epoch resumed mid-way goes on with the losses and time of its first part (saved with it)
                if state["step"] == 0:
                    state.update(losses=[], seconds=0.0)
                losses, t0 = state.setdefault("losses", []), time.time() - state.get("seconds", 0.0)
                bar = tqdm(initial=state["step"], total=len(batches), desc=f"epoch {epoch + 1}/{config.epochs}",
                           unit="batch", disable=None if progress else True, leave=False)
                for step in range(state["step"], len(batches)):
                    idx = batches[step]
                    loss, _ = task.loss(task.collate(x_train, idx), y_train[idx])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                    optimizer.step()
                    schedule.step()
                    if averaged is not None:
                        averaged.update_parameters(model)
                    losses.append(loss.item())
                    state["step"] = step + 1
                    bar.update(1)
                    bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
                    if (step + 1) % -(-len(batches) // 10) == 0 or step + 1 == len(batches):
                        on_step(f"epoch {epoch + 1}/{config.epochs}: batch {step + 1:,} of {len(batches):,}, "
                                f"loss {np.mean(losses[-50:]):.4f}")
                bar.close()
                accuracy = evaluate(task, x_val, y_val, config.batch_size * 4, kept)
                row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)) if losses else None,
                       "val_accuracy": accuracy, "lr": schedule.get_last_lr()[0], "seconds": time.time() - t0,
                       "best": accuracy > state["best"]}
                state.update(epoch=epoch + 1, step=0, losses=[], seconds=0.0)
                if accuracy > state["best"]:
                    state["best"] = accuracy
                    save_checkpoint(_with_training(checkpoint, kept, config, row, len(train_ds), len(val_ds)), out)
                _save_resume(resume_path, model, optimizer, schedule, state, config, checkpoint, averaged)
                with open(log_path, "a") as f:
                    f.write(json.dumps(row) + "\n")
                on_epoch(row)
        except KeyboardInterrupt:
            if state["step"]:
                state["seconds"] = time.time() - t0
            _save_resume(resume_path, model, optimizer, schedule, state, config, checkpoint, averaged)
            raise
    calibration = None
    if Path(out).is_file():  # the best epoch's probabilities, calibrated on the same validation split
        calibration = calibrate_saved(out, val_ds, f"the {len(val_ds)}-input validation split of "
                                                   f"{dataset.source} (seed {config.seed})")
    return {**row, "best_val_accuracy": state["best"], "calibration": calibration}


def calibrate_saved(path: Path, held_out, source: str, out: Path | None = None,
                    on_step: Callable[[str], None] = lambda stage: None) -> dict:
    """Fit a temperature for the checkpoint at ``path`` on ``held_out`` (a Dataset, never the
    test set) and write the checkpoint with it to ``out`` (default: ``path`` itself), once and
    atomically at the end; return the calibration record."""
    from swarmedge.calibration import with_temperature
    from swarmedge.checkpoint import load_checkpoint
    from swarmedge.evaluate import torch_scores

    checkpoint = load_checkpoint(path)
    on_step(f"score {len(held_out):,} held-out inputs")
    scores = torch_scores(checkpoint, held_out)
    on_step("fit the temperature")
    calibrated = with_temperature(checkpoint, scores, held_out.labels, source)
    save_checkpoint(calibrated, path if out is None else out)
    return calibrated["metadata"]["calibration"]


@torch.no_grad()
def evaluate(task, x, y: torch.Tensor, batch_size: int, model=None) -> float:
    """Accuracy of ``model`` (default: the task's) on encoded inputs ``x`` with labels ``y`` (N,)."""
    model = model or task.model
    model.eval()
    correct = 0
    for s in range(0, len(y), batch_size):
        idx = np.arange(s, min(s + batch_size, len(y)))
        correct += int((task.scores(task.collate(x, idx), model).argmax(1) == y[idx]).sum())
    model.train()
    return correct / max(len(y), 1)


def _with_training(checkpoint: dict, model, config: TrainConfig, row: dict, n_train: int, n_val: int) -> dict:
    from swarmedge.checkpoint import make_checkpoint

    meta = {k: v for k, v in checkpoint.get("metadata", {}).items() if k != "swarmedge_version"}
    meta["training"] = {**asdict(config), "epoch": row["epoch"], "val_accuracy": row["val_accuracy"],
                        "train_samples": n_train, "val_samples": n_val}
    meta["source"] = "train"
    return make_checkpoint(model, checkpoint["model_type"], checkpoint["labels"], checkpoint["preprocessing"], **meta)


def _save_resume(path: Path, model, optimizer, schedule, state: dict, config: TrainConfig, start: dict,
                 averaged=None) -> None:
    skeleton = {k: v for k, v in start.items() if k != "state_dict"}  # type, config, labels, tokenizer
    extra = {"averaged": averaged.state_dict()} if averaged is not None else {}
    save_checkpoint({**extra, "checkpoint": skeleton, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "schedule": schedule.state_dict(), "state": dict(state), "config": asdict(config),
                     "torch_rng": torch.get_rng_state()}, path)


def resume_checkpoint(out: Path, config: TrainConfig | None = None) -> dict:
    """The starting checkpoint a run was begun with (its tokenizer included), to resume it.

    ``config``: the settings asked for now, checked against the run's (RESUMED_SETTINGS) before
    any data is read. Raises InputError (no resume file beside ``out``, or another setting) or
    CheckpointError (a damaged, foreign or diverged file)."""
    path = side_files(out)[0]
    if not path.is_file():
        raise InputError(f"nothing to resume: {path} does not exist (start without --resume)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        checkpoint = {**payload["checkpoint"], "state_dict": payload["model"]}
    except Exception as exc:  # a damaged or foreign file: say so in one line
        raise CheckpointError(f"cannot resume from {path}: {(str(exc).splitlines() or ['?'])[0][:160]}") from None
    check_finite(checkpoint["state_dict"], path)  # a diverged run: resuming would train on NaN
    if config is not None:
        _check_settings(payload.get("config", {}), config)
    return checkpoint


def _check_settings(saved: dict, config: TrainConfig) -> None:
    for key, option in RESUMED_SETTINGS.items():
        used = saved.get(key, getattr(TrainConfig, key))  # files older than a key ran with its default
        if used != getattr(config, key):
            raise InputError(f"--resume: the run used {option} {used}, not {getattr(config, key)}: give "
                             f"{option} {used} to continue it (or start again with --overwrite)")


def _load_resume(path: Path, model, optimizer, schedule, config: TrainConfig, averaged=None) -> dict:
    if not path.is_file():
        raise InputError(f"nothing to resume: {path} does not exist (start without --resume)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        schedule.load_state_dict(payload["schedule"])
        if averaged is not None and "averaged" in payload:  # else --ema differs: refused below
            averaged.load_state_dict(payload["averaged"])
        torch.set_rng_state(payload["torch_rng"])
    except Exception as exc:  # a damaged or foreign file: say so in one line
        raise CheckpointError(f"cannot resume from {path}: {str(exc).splitlines()[0][:160]}") from None
    _check_settings(payload["config"], config)
    return payload["state"]
