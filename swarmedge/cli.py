"""The ``swarmedge`` command: thin click commands over the library, imports done lazily."""

import contextlib
import errno
import json
import logging
import os
import sys
from pathlib import Path

import click

from swarmedge import __version__
from swarmedge.cli_errors import ErrorsInOneLine
from swarmedge.cli_measure import arm_check_cmd, arm_setup, compare_cmd, profile, visualize
from swarmedge.cli_options import (
    DATA_DIR_HELP,
    DATA_HELP,
    OVERWRITE_HELP,
    PRECISIONS,
    SEEDS,
    TARGETS,
    OutputFile,
    finite,
)
from swarmedge.cli_run import run
from swarmedge.cli_train import calibrate, train
from swarmedge.errors import SwarmedgeError
from swarmedge.progress import QUIET_HELP, Stages


class Group(ErrorsInOneLine):
    """Turns swarmedge errors, like click's usage errors (``cli_errors.py``), into one line
    on stderr and a non-zero exit."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SwarmedgeError as exc:
            click.echo(f"swarmedge: error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("swarmedge: interrupted; nothing was left half-written", err=True)
            ctx.exit(130)
        except OSError as exc:
            if exc.errno not in _OUTPUT_ERRNOS:
                raise
            _quiet_stdout()  # what could not be written must not be retried (and fail again) at exit
            if exc.errno == errno.EPIPE:  # `swarmedge run ... | head`: the reader has gone; stop quietly
                ctx.exit(141)
            where = f" ({exc.filename})" if exc.filename else " (standard output)"
            click.echo(f"swarmedge: error: cannot write{where}: {exc.strerror}; free some space or write "
                       "elsewhere", err=True)
            ctx.exit(1)


# Failures of the output itself (a full disk, a closed pipe, a read-only mount), not of swarmedge.
_OUTPUT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EPIPE, errno.EIO, errno.EROFS, errno.EFBIG}


def _quiet_stdout() -> None:
    with contextlib.suppress(Exception):
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives until exit
        os.dup2(sys.stdout.fileno(), 1)


@click.group("swarmedge", cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="swarmedge")
def cli():
    """Swarm-style transformer classifiers from PyTorch to int8 ONNX on x86 laptops and Raspberry Pis.

    \b
    Try it:
      swarmedge init boids -o digits.pt
      swarmedge export --quantize int8 digits.pt        # -> digits.bundle/
      swarmedge run digits.bundle --image five.png     # boids tell 5 from 6
    """
    _notes_to_stderr()


class _Notes(logging.Handler):
    """What the library says in passing (logger ``swarmedge``: a download starting), printed on
    stderr as ``swarmedge: note: ...``, never on stdout, where results and --json go."""

    def emit(self, record):
        click.echo(f"swarmedge: note: {record.getMessage()}", err=True)


def _notes_to_stderr() -> None:
    logger = logging.getLogger("swarmedge")
    if not any(isinstance(h, _Notes) for h in logger.handlers):
        logger.addHandler(_Notes())
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _parse_sets(values) -> dict:
    out = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--set")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


@cli.command()
@click.argument("model_type", type=click.Choice(["swarmformer", "boids"]))
@click.option("-c", "--config", "preset", help="Named config: swarmformer small|base, boids binary|eight.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override one config field (repeatable).")
@click.option("--vocab", type=click.Path(path_type=Path), help="WordPiece vocab.txt for SwarmFormer "
              "[default: bert-base-uncased's, from $SWARMEDGE_DATA or the cache, downloaded on first use].")
@click.option("--seed", type=SEEDS, default=0, show_default=True, help="Seed of the random initialisation.")
@click.option("-o", "--output", required=True, type=OutputFile(), help="Checkpoint to write (.pt).")
@click.option("--overwrite", is_flag=True, help=OVERWRITE_HELP)
def init(model_type, preset, sets, vocab, seed, output, overwrite):
    """Write a freshly initialised checkpoint, to try the pipeline before training.

    \b
    Examples:
      swarmedge init swarmformer --config small -o small.pt
      swarmedge init boids --set blocks=2 --set recurrent=false -o blocks2.pt
      swarmedge init boids --config eight -o eight.pt
    """
    from swarmedge.errors import InputError, require_extra
    from swarmedge.output_paths import check_checkpoint_output, check_new_checkpoint

    check_checkpoint_output(output)
    check_new_checkpoint(output, overwrite)
    require_extra("torch", "export")
    from swarmedge.checkpoint import init_checkpoint, save_checkpoint
    from swarmedge.models import boids, swarmformer

    presets = {"swarmformer": swarmformer.PRESETS, "boids": boids.PRESETS}[model_type]
    name = preset or ("small" if model_type == "swarmformer" else "binary")
    if name not in presets:
        raise InputError(f"unknown {model_type} config {name!r}; choose from {', '.join(presets)}")
    asked = _parse_sets(sets)
    if model_type == "swarmformer" and "vocab_size" in asked:
        raise InputError("--set vocab_size: a SwarmFormer's vocab_size is the size of its vocabulary; "
                         "choose the vocabulary with --vocab FILE instead")
    ckpt = init_checkpoint(model_type, {**presets[name].to_dict(), **asked}, seed=seed, vocab=vocab)
    # a --set the model did not take (replaced by what the data decides) must not pass in silence
    made = json.loads(json.dumps(ckpt["config"]))  # tuples as lists, as --set's JSON gives them
    for key, value in asked.items():
        if key in made and made[key] != value:
            raise InputError(f"--set {key}={json.dumps(value)} was not applied (the model has {key}="
                             f"{json.dumps(made[key])}); leave it out")
    save_checkpoint(ckpt, output)
    n = sum(t.numel() for t in ckpt["state_dict"].values())
    what = f"{name} preset changed by --set {', '.join(asked)}" if asked else name  # the name alone would mislead
    click.echo(f"wrote {output}: {model_type} ({what}), {n:,} parameters, randomly initialised (seed {seed})")


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Bundle directory [default: NAME.bundle in the current folder, NAME from MODEL's file or folder].")
@click.option("--quantize", type=click.Choice(["int8", "none"], case_sensitive=False), default="int8",
              show_default=True, help="int8: add an int8 model beside the fp32 one; none: fp32 only.")
@click.option("--mode", type=click.Choice(["dynamic", "static"], case_sensitive=False), default="dynamic",
              show_default=True,
              help="int8 flavour: dynamic (weights only, activations at run time) or static QDQ (calibrated).")
@click.option("--target", type=click.Choice(TARGETS, case_sensitive=False), default="auto", show_default=True,
              help="CPU to quantize for; auto reads this machine's CPU.")
@click.option("--per-channel/--per-tensor", "per_channel", default=None,
              help="Weight scales per output channel or one per tensor [default: the target's, per-channel].")
@click.option("--reduce-range/--no-reduce-range", "reduce_range", default=None,
              help="7-bit weights (against int16 saturation on x86 without VNNI) [default: the target's].")
@click.option("--weight-type", type=click.Choice(["int8", "uint8"], case_sensitive=False),
              help="Weight type, as onnxruntime's QuantType QInt8/QUInt8 [default: the target's, int8].")
@click.option("--calibration", type=click.Path(path_type=Path),
              help="Inputs for calibration and the int8 check: .txt/.jsonl[.gz] texts, .npy/.npz/folder of digits.")
@click.option("--calibration-method", "--method", "method",
              type=click.Choice(["minmax", "entropy", "percentile"], case_sensitive=False), default="minmax",
              show_default=True, help="Calibration method for --mode static (onnxruntime's CalibrationMethod).")
@click.option("--opset", type=click.IntRange(18, 26), default=20, show_default=True,
              help="ONNX opset: the dynamo exporter's and onnxruntime's common range.")
@click.option("--atol", "--tolerance", "tolerance", type=click.FloatRange(0, 1, min_open=True), callback=finite,
              default=1e-4, show_default=True,
              help="Absolute tolerance of the ONNX-vs-PyTorch check (optimum-cli's --atol). Allowed |ONNX - "
                   "PyTorch| for each output: this plus 0.0001 x that output's largest |PyTorch value|.")
@click.option("--allow-mismatch", is_flag=True,
              help="Keep the bundle even if parity fails or int8 agrees with fp32 on under 90% of inputs "
                   "(recorded in the manifest).")
@click.option("--vocab", type=click.Path(path_type=Path), help="vocab.txt for reference SwarmFormer checkpoints.")
@click.option("--no-overwrite", is_flag=True,
              help="Refuse when the output exists, instead of replacing a bundle there (said on stderr).")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON instead of the summary.")
@click.option("-q", "--quiet", is_flag=True, help=QUIET_HELP)
def export(model, output, quantize, mode, target, per_channel, reduce_range, weight_type, calibration, method, opset,
           tolerance, allow_mismatch, vocab, no_overwrite, as_json, quiet):
    """Export MODEL (.pt, a folder holding model.pt, or reference model.safetensors + config.json) to a bundle.

    Checks the ONNX model against PyTorch, quantizes to int8 for the target CPU, and
    compares int8 with fp32. Nothing is written unless every step succeeds.

    \b
    Examples:
      swarmedge export model.pt                                  # int8 for this CPU
      swarmedge export model.pt --target pi5 -o pi5.bundle
      swarmedge export model.pt --mode static --calibration imdb_test.jsonl.gz
      swarmedge export SwarmFormer-Sentiment-Small/ --vocab vocab.txt
    """
    from swarmedge.errors import require_extra

    require_extra("torch", "export")
    from swarmedge.export import export_bundle
    from swarmedge.export.pipeline import STEPS, default_bundle_path
    from swarmedge.output_paths import bundle_manifest
    from swarmedge.summary import bundle_summary, replaced_note

    target_dir = Path(output) if output is not None else default_bundle_path(model)
    if no_overwrite and os.path.lexists(target_dir):
        from swarmedge.errors import InputError

        raise InputError(f"{target_dir} exists and --no-overwrite keeps it: choose another -o, or drop "
                         "--no-overwrite to replace it")
    previous = bundle_manifest(target_dir)

    with Stages("export", total=len(STEPS), quiet=quiet) as on_step:
        path, manifest = export_bundle(
            model, output, quantize_mode=None if quantize == "none" else mode, target=target,
            overrides={"per_channel": per_channel, "reduce_range": reduce_range, "weight_type": weight_type},
            calibration=calibration, method=method, opset=opset, tolerance=tolerance,
            allow_mismatch=allow_mismatch, vocab=vocab, on_step=on_step,
        )
    if previous is not None:
        click.echo(f"swarmedge: note: {replaced_note(path, previous)}", err=True)
    click.echo(json.dumps(manifest, indent=2) if as_json else bundle_summary(path, manifest))


@cli.command("eval")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--data", "data", required=True, help=DATA_HELP)
@click.option("--data-dir", type=click.Path(path_type=Path), help=DATA_DIR_HELP)
@click.option("--precision", type=click.Choice(PRECISIONS, case_sensitive=False),
              help="For bundles [default: int8 if present].")
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate a seeded sample of this many inputs.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of the table.")
@click.option("-q", "--quiet", is_flag=True, help=QUIET_HELP)
def eval_(model, data, data_dir, precision, limit, as_json, quiet):
    """Accuracy, precision, recall, F1 and the confusion matrix on a test set.

    MODEL is a checkpoint (.pt, evaluated with PyTorch) or a bundle (onnxruntime, no torch).

    \b
    Examples:
      swarmedge eval digits.bundle --data mnist
      swarmedge eval small.pt --data imdb --json
      swarmedge eval small.bundle --data imdb --precision fp32 --limit 2000
    """
    from swarmedge.evaluate import evaluate_model
    from swarmedge.metrics import format_report

    with Stages("eval", quiet=quiet) as on_step:
        report = evaluate_model(model, data, data_dir=data_dir, precision=precision, limit=limit, on_step=on_step)
    report.pop("predictions")
    report.pop("scores")
    for note in report["notes"]:
        click.echo(f"swarmedge: note: {note}", err=True)
    click.echo(json.dumps(report, indent=2) if as_json else format_report(report))


@cli.command()
@click.option("--workdir", type=click.Path(path_type=Path), default=Path("demo-out"), show_default=True,
              help="Where the demo writes its checkpoints and bundles.")
def demo(workdir):
    """Run the main job offline: checkpoint -> int8 bundle -> predictions, for both models.

    \b
    Examples:
      swarmedge demo
      SWARMEDGE_DATA=~/data swarmedge demo --workdir /tmp/demo
    """
    from swarmedge.errors import require_extra

    require_extra("torch", "export")
    from swarmedge.demo import run_demo

    run_demo(workdir, click.echo)


cli.add_command(run)
cli.add_command(train)
cli.add_command(calibrate)
for command in (profile, compare_cmd, visualize, arm_setup, arm_check_cmd):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="swarmedge")


if __name__ == "__main__":
    main()
