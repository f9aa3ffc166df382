"""``swarmedge train``: the training commands (a group of their own; cli.py adds it).

Errors raised here reach the top-level group in cli.py, which prints them as one line.
"""

import sys
from pathlib import Path

import click

from swarmedge.cli_errors import Command, CommandGroup
from swarmedge.cli_options import OVERWRITE_HELP, OutputFile
from swarmedge.errors import InputError
from swarmedge.limits import FIELD_MAX, MAX_BATCH
from swarmedge.progress import QUIET_HELP, Stages

BOIDS_MAX = FIELD_MAX["boids"]


def _finite(ctx, param, value):
    # click's FloatRange lets NaN through (every comparison with NaN is false)
    if value is not None and (value != value or value in (float("inf"), float("-inf"))):
        raise click.BadParameter(f"{value} is not a finite number")
    return value


def _train_options(f):
    for option in reversed([
        click.option("--data", type=click.Path(path_type=Path),
                     help="The model's data set (mnist for boids, imdb for swarmformer; found in $SWARMEDGE_DATA or "
                          "the cache, else downloaded there once) or a folder holding its files, or your own "
                          "labelled .jsonl / folder of class folders [default: the model's data set]."),
        click.option("--epochs", type=click.IntRange(1, 10_000), default=10, show_default=True,
                     help="Passes over the training data; the best epoch by validation accuracy is kept."),
        click.option("--batch-size", type=click.IntRange(1, MAX_BATCH), default=32, show_default=True,
                     help="Inputs per optimisation step."),
        click.option("--lr", type=click.FloatRange(0, 10, min_open=True), callback=_finite, default=1e-3,
                     show_default=True, help="Peak learning rate (AdamW)."),
        click.option("--weight-decay", type=click.FloatRange(0, 10), callback=_finite, default=0.01,
                     show_default=True, help="AdamW's decoupled weight decay."),
        click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
                     help="Seeds init, split and batch order."),
        click.option("--ema", type=click.FloatRange(0, 1, max_open=True), callback=_finite, default=0.0,
                     show_default=True, help="Validate and keep an exponential moving average of the weights "
                                             "with this decay per step (0.99: about the last 100 steps; 0: off)."),
        click.option("--resume", is_flag=True, help="Continue the run whose OUT.resume.pt is beside -o."),
        click.option("--overwrite", is_flag=True, help=OVERWRITE_HELP),
        click.option("--threads", type=click.IntRange(min=1),
                     help="torch threads [default: all cores; more than the cores this process may use are "
                          "capped at that number, with a note]."),
        click.option("-o", "--output", required=True, type=OutputFile(), help="Best checkpoint (.pt)."),
        click.option("-q", "--quiet", is_flag=True, help=QUIET_HELP),
    ]):
        f = option(f)
    return f


@click.group(cls=CommandGroup)
def train():
    """Train a model on CPU: progress bars, best checkpoint by validation accuracy, resumable.

    \b
    Examples:
      swarmedge train boids --digits 5 6 --epochs 8 -o digits.pt
      swarmedge train boids --classes 8 --blocks 2 --no-recurrent -o eight.pt
      swarmedge train swarmformer --config small --epochs 6 -o small.pt
      swarmedge train swarmformer --config small -o small.pt --resume     # after Ctrl-C
    """


def _refuse_other_model(asked: dict, ckpt: dict, truncation: str = "head", vocab: Path | None = None) -> None:
    """--resume keeps the run's own model and tokenizer: refuse a model option, --truncation or
    --vocab typed with a different value (they used to be ignored in silence). Options left at
    their defaults are not the user's ask; the same command typed again resumes."""
    from click.core import ParameterSource

    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return
    typed = {name for name in ctx.params if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE}
    kept = ckpt["preprocessing"]
    if "truncation" in typed and truncation != kept.get("truncation", "head"):
        raise click.UsageError(f"--resume continues the run's own tokenizer (truncation {kept.get('truncation')}, "
                               f"not {truncation}): drop --truncation, or start again with --overwrite")
    if "vocab" in typed and vocab is not None and _other_vocabulary(vocab, kept["tokenizer"]):
        raise click.UsageError(f"--resume continues the run's own tokenizer, whose vocabulary is not {vocab}'s: "
                               "drop --vocab, or start again with --overwrite")
    for key, value in asked.items():
        if key == "vocab_size":  # the run's tokenizer set it (--vocab is checked above)
            continue
        used = ckpt["config"].get(key)
        options = {"preset"} if ckpt["model_type"] == "swarmformer" else {key, "classes"} if key == "digits" else {key}
        if used is not None and value != used and typed & options:
            flag = ("--config" if options == {"preset"} else "--classes" if key == "digits" and "classes" in typed
                    else "--no-recurrent" if key == "recurrent" and value is False else "--" + key.replace("_", "-"))
            raise click.UsageError(f"--resume continues the run's own model ({key.replace('_', ' ')} {used}, not "
                                   f"{value}): drop {flag}, or start again with --overwrite")


def _other_vocabulary(vocab_txt: Path, tokenizer_json: str) -> bool:
    from swarmedge.tokenizer import vocabulary, wordpiece_from_vocab

    return vocabulary(wordpiece_from_vocab(vocab_txt)) != vocabulary(tokenizer_json)


def _run_training(model_type, config, labels, data, digits, vocab, epochs, batch_size, lr, weight_decay, seed,
                  resume, threads, output, label_smoothing=0.0, token_dropout=0.0, truncation="head",
                  init_embeddings="random", asked=None, quiet=False, augment="none", overwrite=False,
                  boid_loss="squared", ema=0.0):
    from swarmedge.errors import require_extra

    require_extra("torch", "export")
    from swarmedge.output_paths import check_checkpoint_output, check_new_checkpoint, check_output_file
    from swarmedge.training.loop import side_files

    check_checkpoint_output(output)
    for path in side_files(output):  # checked now, not after the first epoch
        check_output_file(path)
    if resume and overwrite:
        raise click.UsageError("give --resume (continue the run) or --overwrite (start again), not both")
    if not resume:
        resume_file = side_files(output)[0]
        check_new_checkpoint(output, overwrite, f", --resume to continue its run ({resume_file.name} is there)"
                             if resume_file.is_file() else "")
        if resume_file.is_file() and not overwrite:  # a run stopped before its first checkpoint
            raise click.UsageError(f"{resume_file} holds an interrupted run: --resume to continue it, or "
                                   "--overwrite to start again")
    from swarmedge.runtimes.batching import clamp_threads
    from swarmedge.training import TrainConfig
    from swarmedge.training import train as run
    from swarmedge.training.loop import resume_checkpoint
    from swarmedge.training.setup import (
        check_trainable,
        check_training_data,
        fit_config,
        load_training_data,
        starting_checkpoint,
    )

    if threads is not None:
        threads, notice = clamp_threads(threads)
        if notice:
            click.echo(f"swarmedge: note: {notice}", err=True)
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, seed=seed,
                      label_smoothing=label_smoothing, token_dropout=token_dropout, init_embeddings=init_embeddings,
                      augment=augment, boid_loss=boid_loss, ema=ema)
    if resume:  # the run's settings are checked before its data is read
        ckpt = resume_checkpoint(output, cfg)
    else:
        check_trainable(model_type, config)  # before the data is read or a vocabulary learnt
    dataset = load_training_data(model_type, data, digits)
    check_training_data(dataset, TrainConfig.val_fraction)  # before a vocabulary is learnt or a model built
    config = fit_config(model_type, config, dataset, asked)  # one output per label
    click.echo(f"data: {dataset.source}, {len(dataset)} samples, labels {', '.join(dataset.label_names)}")
    if resume:  # the tokenizer and config the run started with, not new ones
        _refuse_other_model(config, ckpt, truncation, vocab)
    else:
        ckpt = starting_checkpoint(model_type, config, texts=dataset.inputs if dataset.kind == "text" else None,
                                   vocab=vocab, seed=seed, labels=dataset.label_names, truncation=truncation)

    def on_epoch(row):
        mark = "  (best, saved)" if row["best"] else ""
        click.echo(f"epoch {row['epoch']}: loss {row['train_loss']:.4f}  val accuracy {row['val_accuracy']:.2%}  "
                   f"{row['seconds']:.0f}s{mark}")

    try:
        # a terminal has the loop's own bar; elsewhere a line every tenth of an epoch
        with Stages("train", quiet=quiet or sys.stderr is None or sys.stderr.isatty()) as on_step:
            result = run(ckpt, dataset, output, cfg, resume=resume, on_epoch=on_epoch, threads=threads,
                         progress=not quiet, on_step=on_step)
    except KeyboardInterrupt:
        state = side_files(output)[0]
        click.echo(f"swarmedge: interrupted; resume with the same command and --resume (state in {state})"
                   if state.is_file() else "swarmedge: interrupted before anything was saved; run the command "
                   "again (without --resume)", err=True)
        raise SystemExit(130) from None
    click.echo(f"best validation accuracy {result['best_val_accuracy']:.2%}; checkpoint {output}, "
               f"log {side_files(output)[1]}")
    _say_calibration(result.get("calibration"))


def _say_calibration(c: dict | None) -> None:
    if c:
        click.echo(f"probabilities: temperature {c['temperature']:.3f} fitted on {c['fitted_on']}; there, "
                   f"ECE {c['before']['ece']:.4f} -> {c['after']['ece']:.4f}, "
                   f"NLL {c['before']['nll']:.4f} -> {c['after']['nll']:.4f}")


@click.command(cls=Command)
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--data", help="The data the model was trained on: mnist, imdb, a folder holding them, or your own "
                             "labelled data [default: the model's data set]. Only its validation split is used.")
@click.option("--val-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.1,
              show_default=True, help="Share of the training data held out, as in training.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1),
              help="Seed of the held-out split [default: the seed the model was trained with, else 0].")
@click.option("-o", "--output", required=True, type=OutputFile(),
              help="Checkpoint to write, with its temperature (may be MODEL itself).")
@click.option("--overwrite", is_flag=True, help=OVERWRITE_HELP + " Not needed when -o is MODEL itself.")
@click.option("-q", "--quiet", is_flag=True, help=QUIET_HELP)
def calibrate(model, data, val_fraction, seed, output, overwrite, quiet):
    """Fit a temperature to MODEL's probabilities on held-out training data (temperature scaling).

    The predicted classes do not change; the probabilities then mean what they say (a 0.9 is
    right about 9 times in 10). `swarmedge train` does this by itself at the end; this is for
    checkpoints trained before, or elsewhere. The test set is never used.

    \b
    Examples:
      swarmedge calibrate zoo/boids-5v6/model.pt -o boids-calibrated.pt
      swarmedge calibrate small.pt --data imdb -o small.pt
      swarmedge calibrate mine.pt --data reviews.jsonl --seed 3 -o mine.pt
    """
    from swarmedge.checkpoint import load_checkpoint, model_file
    from swarmedge.errors import require_extra
    from swarmedge.output_paths import check_checkpoint_output, check_new_checkpoint
    from swarmedge.training.loop import calibrate_saved
    from swarmedge.training.setup import load_training_data

    require_extra("torch", "export")
    check_checkpoint_output(output)
    if Path(output).resolve() != model_file(model).resolve():  # MODEL itself only gains its temperature
        check_new_checkpoint(output, overwrite, ", or -o MODEL itself to add the temperature to it")
    ckpt = load_checkpoint(model)
    training = ckpt["metadata"].get("training", {})
    seed = training.get("seed", 0) if seed is None else seed
    digits = [int(x) for x in ckpt["labels"]] if all(x.isdigit() for x in ckpt["labels"]) else None
    with Stages("calibrate", quiet=quiet) as on_step:
        on_step("read the training data")
        dataset = load_training_data(ckpt["model_type"], Path(data) if data else None, digits,
                                     reads=f"this {ckpt['model_type']} model was trained on")
        if list(dataset.label_names) != list(ckpt["labels"]):
            raise InputError(f"{dataset.source}'s labels ({', '.join(dataset.label_names)}) are not the model's "
                             f"({', '.join(ckpt['labels'])}): pass the data it was trained on with --data")
        held_out = dataset.split(val_fraction, seed)[1]
        # written once, atomically, at the end: an interrupted or failed fit leaves -o as it was
        record = calibrate_saved(model_file(Path(model)), held_out,
                                 f"the {len(held_out)}-input validation split of {dataset.source} (seed {seed})",
                                 out=output, on_step=on_step)
    _say_calibration(record)


@train.command("boids")
@click.option("--digits", type=click.IntRange(0, 9), nargs=2, help="Binary task: two MNIST digits [default: 5 6].")
@click.option("--classes", type=click.IntRange(2, 8), help="Multi-class task on digits 0..N-1 (cube vertices).")
@click.option("--blocks", type=click.IntRange(1, BOIDS_MAX["blocks"]), default=10, show_default=True,
              help="Steps of the swarm (the exported graph unrolls every one).")
@click.option("--recurrent/--no-recurrent", default=True, show_default=True, help="One weight-shared block.")
@click.option("--d-model", type=click.IntRange(3, BOIDS_MAX["d_model"]), default=3, show_default=True,
              help="Dimensions of the space the boids fly in (the first 3 are where classes sit).")
@click.option("--dim-feedforward", type=click.IntRange(1, BOIDS_MAX["dim_feedforward"]), default=512,
              show_default=True, help="Hidden units of each block's feed-forward layer.")
@click.option("--augment", type=click.Choice(["none", "affine"]), default="none", show_default=True,
              help="affine: turn each training digit by up to 15 degrees, scale it by 0.9-1.1 and shift it by up "
                   "to 2 pixels, anew every epoch (validation and test digits are never changed).")
@click.option("--loss", "boid_loss", type=click.Choice(["squared", "distance"]), default="squared",
              show_default=True, help="What pulls each boid to its class target: its squared distance, or the "
                                      "distance itself (the original work's loss).")
@_train_options
def train_boids(digits, classes, blocks, recurrent, d_model, dim_feedforward, augment, boid_loss, data, epochs,
                batch_size, lr, weight_decay, seed, ema, resume, overwrite, threads, output, quiet):
    """Train the boid swarm on MNIST digits (or your own folder of class folders: the classes follow it).

    \b
    Examples:
      swarmedge train boids -o digits.pt                             # 5 vs 6, as published
      swarmedge train boids --digits 3 8 --epochs 15 --lr 5e-3 -o 3v8.pt
      swarmedge train boids --classes 8 --blocks 2 --no-recurrent -o eight.pt
      swarmedge train boids --data my_digits/ -o mine.pt             # my_digits/<label>/*.png
    """
    if digits and classes:
        raise click.UsageError("give --digits or --classes, not both")
    chosen = tuple(range(classes)) if classes else tuple(digits or (5, 6))
    config = {"digits": list(chosen), "blocks": blocks, "recurrent": recurrent, "d_model": d_model,
              "dim_feedforward": dim_feedforward}
    asked = ("--digits", tuple(digits)) if digits else ("--classes", chosen) if classes else None
    _run_training("boids", config, None, data, chosen, None, epochs, batch_size, lr, weight_decay, seed, resume,
                  threads, output, asked=asked, quiet=quiet, augment=augment, overwrite=overwrite,
                  boid_loss=boid_loss, ema=ema)


@train.command("swarmformer")
@click.option("-c", "--config", "preset", type=click.Choice(["small", "base"]), default="small", show_default=True,
              help="Published size: small (4.3M parameters) or base (6.7M).")
@click.option("--vocab", type=click.Path(path_type=Path),
              help="Use this vocab.txt [default: learn a WordPiece vocabulary from the training texts].")
@click.option("--label-smoothing", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              help="Share of each target spread over the other classes (regularises over-confidence).")
@click.option("--token-dropout", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              help="Share of tokens hidden behind [UNK] in each training text (augmentation).")
@click.option("--truncation", type=click.Choice(["head", "head-tail"]), default="head", show_default=True,
              help="Which tokens of a long text the model sees: the first ones, or the first quarter "
                   "and the last three quarters (kept in the checkpoint and bundle).")
@click.option("--init-embeddings", type=click.Choice(["random", "ppmi"]), default="random", show_default=True,
              help="Start the embedding from random vectors or from word vectors of the training texts "
                   "(PPMI + SVD, no labels, about a minute).")
@_train_options
def train_swarmformer(preset, vocab, label_smoothing, token_dropout, truncation, init_embeddings, data, epochs,
                      batch_size, lr, weight_decay, seed, ema, resume, overwrite, threads, output, quiet):
    """Train SwarmFormer on IMDB (or your own labelled texts).

    \b
    Examples:
      swarmedge train swarmformer -o small.pt                        # IMDB, Small, 10 epochs
      swarmedge train swarmformer --config base --epochs 6 --truncation head-tail -o base.pt
      swarmedge train swarmformer --data reviews.jsonl -o mine.pt    # {"text", "label"} per line
      swarmedge train swarmformer -o small.pt --resume               # after Ctrl-C
    """
    from swarmedge.models.swarmformer import PRESETS

    _run_training("swarmformer", PRESETS[preset].to_dict(), None, data, None, vocab, epochs, batch_size, lr,
                  weight_decay, seed, resume, threads, output, label_smoothing, token_dropout, truncation,
                  init_embeddings, quiet=quiet, overwrite=overwrite, ema=ema)
