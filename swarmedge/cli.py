"""The ``swarmedge`` command: thin click commands over the library, imports done lazily."""

import contextlib
import errno
import json
import os
import sys
from pathlib import Path

import click

from swarmedge import __version__
from swarmedge.cli_errors import ErrorsInOneLine
from swarmedge.cli_train import train
from swarmedge.errors import SwarmedgeError
from swarmedge.limits import MAX_BATCH, MAX_REPEAT, MAX_WARMUP

TARGETS = ["auto", "x86", "x86-vnni", "arm64", "pi4", "pi5"]
PRECISIONS = ["int8", "fp32"]
SEEDS = click.IntRange(0, 2**32 - 1)  # numpy's and torch's seeds: unsigned 32-bit is safe for both
THREADS_HELP = "more than the cores this process may use are capped at that number, with a note"


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


def _note(notice: str) -> None:
    click.echo(f"swarmedge: note: {notice}", err=True)


def _capped_threads(threads):
    """``threads`` capped at the cores this process may use; the notice goes to stderr."""
    from swarmedge.runtimes.batching import clamp_threads

    if threads is None:
        return None
    threads, notice = clamp_threads(threads)
    if notice:
        _note(notice)
    return threads


def _finite(ctx, param, value):
    # click's FloatRange lets NaN through (every comparison with NaN is false)
    if value is not None and value != value or value in (float("inf"), float("-inf")):
        raise click.BadParameter(f"{value} is not a finite number")
    return value


def _choice_list(choices):
    """A callback reading a comma-separated list of ``choices`` (any case, or a function
    returning them), refusing any other value in one line that lists the choices."""
    def parse(ctx, param, value):
        if value is None:
            return None
        allowed = list(choices() if callable(choices) else choices)
        items = [v.strip().lower() for v in str(value).split(",") if v.strip()]
        if not items:
            raise click.BadParameter(f"give one or more of {', '.join(allowed)}, comma-separated")
        for item in items:
            if item not in allowed:
                raise click.BadParameter(f"{item!r} is not one of {', '.join(allowed)}")
        return list(dict.fromkeys(items))
    return parse


def _remote(ctx, param, value):
    # an empty --remote (an unset shell variable, say) would otherwise run here without a word
    if value is not None and not value.strip():
        raise click.BadParameter("an empty host; give [USER@]HOST[:DIR], e.g. pi@raspberrypi.local, "
                                 "or leave --remote out to run on this machine")
    return value


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
              "[default: $SWARMEDGE_DATA/bert-base-uncased-vocab.txt].")
@click.option("--seed", type=SEEDS, default=0, show_default=True, help="Seed of the random initialisation.")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Checkpoint to write (.pt).")
def init(model_type, preset, sets, vocab, seed, output):
    """Write a freshly initialised checkpoint, to try the pipeline before training.

    \b
    Examples:
      swarmedge init swarmformer --config small -o small.pt
      swarmedge init boids --set blocks=2 --set recurrent=false -o blocks2.pt
      swarmedge init boids --config eight -o eight.pt
    """
    from swarmedge.errors import InputError, require_extra

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
    click.echo(f"wrote {output}: {model_type} ({name}), {n:,} parameters, randomly initialised (seed {seed})")


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Bundle directory [default: MODEL.bundle beside MODEL].")
@click.option("--quantize", type=click.Choice(["int8", "none"], case_sensitive=False), default="int8",
              show_default=True)
@click.option("--mode", type=click.Choice(["dynamic", "static"], case_sensitive=False), default="dynamic",
              show_default=True,
              help="int8 flavour: dynamic (weights only, activations at run time) or static QDQ (calibrated).")
@click.option("--target", type=click.Choice(TARGETS, case_sensitive=False), default="auto", show_default=True,
              help="CPU to quantize for; auto reads this machine's CPU.")
@click.option("--calibration", type=click.Path(path_type=Path),
              help="Inputs for calibration and the int8 check: .txt/.jsonl[.gz] texts, .npy/.npz/folder of digits.")
@click.option("--method", type=click.Choice(["minmax", "entropy", "percentile"], case_sensitive=False),
              default="minmax",
              show_default=True, help="Calibration method for --mode static.")
@click.option("--opset", type=click.IntRange(18, 26), default=20, show_default=True,
              help="ONNX opset: the dynamo exporter's and onnxruntime's common range.")
@click.option("--tolerance", type=click.FloatRange(0, 1, min_open=True), callback=_finite, default=1e-4,
              show_default=True,
              help="Allowed |ONNX - PyTorch| for each output: this plus 0.0001 x that output's largest "
                   "|PyTorch value|.")
@click.option("--allow-mismatch", is_flag=True,
              help="Keep the bundle even if parity fails or int8 agrees with fp32 on under 90% of inputs "
                   "(recorded in the manifest).")
@click.option("--vocab", type=click.Path(path_type=Path), help="vocab.txt for reference SwarmFormer checkpoints.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON instead of the summary.")
def export(model, output, quantize, mode, target, calibration, method, opset, tolerance, allow_mismatch, vocab,
           as_json):
    """Export MODEL (.pt, or reference model.safetensors + config.json) to a bundle.

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
    from tqdm import tqdm

    from swarmedge.export import export_bundle
    from swarmedge.export.pipeline import STEPS
    from swarmedge.summary import bundle_summary

    with tqdm(total=len(STEPS), desc="export", unit="step", file=sys.stderr, disable=None, leave=False) as bar:
        def on_step(step):
            bar.set_postfix_str(step)
            bar.update(0 if bar.n == 0 and step == "load" else 1)

        path, manifest = export_bundle(
            model, output, quantize_mode=None if quantize == "none" else mode, target=target,
            calibration=calibration, method=method, opset=opset, tolerance=tolerance,
            allow_mismatch=allow_mismatch, vocab=vocab, on_step=on_step,
        )
    click.echo(json.dumps(manifest, indent=2) if as_json else bundle_summary(path, manifest))


@cli.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.argument("stdin", required=False, metavar="[-]")
@click.option("--text", "texts", multiple=True, help="A text to classify (repeatable).")
@click.option("--file", "file", type=click.Path(path_type=Path),
              help="Texts, one per line (.txt/.jsonl), or images (.npy/.npz of N x 28 x 28).")
@click.option("--image", "images", multiple=True, type=click.Path(path_type=Path),
              help="A PNG/JPEG/npy digit image (repeatable).")
@click.option("--precision", type=click.Choice(PRECISIONS, case_sensitive=False),
              help="[default: int8 if the bundle has it]")
@click.option("--threads", type=click.IntRange(min=1),
              help=f"Inputs classified in parallel, one onnxruntime thread each [default: all cores; {THREADS_HELP}].")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per input (JSON lines).")
@click.option("--remote", metavar="[USER@]HOST[:DIR]", callback=_remote,
              help="Run on a device over ssh (the bundle is copied there).")
def run(bundle, stdin, texts, file, images, precision, threads, as_json, remote):
    """Classify texts or digit images with BUNDLE (device side: no torch needed).

    \b
    Examples:
      swarmedge run small.bundle --text "A wonderful, moving film." --text "Dull."
      cat reviews.txt | swarmedge run small.bundle - --json
      swarmedge run digits.bundle --image five.png --image six.jpg --precision fp32
      swarmedge run small.bundle --text "Loved it." --remote pi@raspberrypi.local
    """
    from swarmedge.runtimes import run as runner
    from swarmedge.runtimes.textfiles import read_stream

    if stdin not in (None, "-"):
        raise click.BadParameter(f"unexpected argument {stdin!r}; use - to read texts from stdin")
    if file is not None and str(file) == "-" and not stdin:  # --file - reads stdin, as the bare - does
        file, stdin = None, "-"
    sources = sum(bool(s) for s in (texts, file, images, stdin))
    if sources != 1:
        raise click.UsageError("give exactly one of --text, --file, --image or - (stdin)")
    if remote:
        from swarmedge.remote import remote_run

        args = [a for t in texts for a in ("--text", t)] + [a for i in images for a in ("--image", Path(i).name)]
        args += (["--file", file.name] if file else []) + (["-"] if stdin else [])
        args += (["--precision", precision] if precision else []) + (["--threads", str(threads)] if threads else [])
        files = [*images, *([file] if file else [])]
        out = remote_run(remote, bundle, args + (["--json"] if as_json else []), files,
                         read_stream(sys.stdin.buffer, "stdin") if stdin else None)
        click.echo(out, nl=False)
        return
    threads = _capped_threads(threads)  # here, not before --remote: the device has its own cores
    # bytes, not text-mode stdin: decoded by the same policy as --file, so bad bytes name their line
    if stdin and sys.stdin is None:
        raise click.UsageError("- reads texts from stdin, but stdin is closed; pipe texts in, or use --text/--file")
    stdin_bytes = read_stream(sys.stdin.buffer, "stdin") if stdin else None
    results, notices = runner.classify(bundle, texts=list(texts), file=file, images=list(images),
                                       stdin=stdin_bytes, precision=precision, threads=threads)
    for notice in notices:
        click.echo(f"swarmedge: note: {notice}", err=True)
    for name, pred in results:
        if as_json:
            click.echo(json.dumps({"input": name, **pred.to_dict()}))
            continue
        if pred.tokens_kept is None:  # an image: its file name
            click.echo(f"{pred.label}\t{pred.probability:.3f}\t{name}")
            continue
        # a text: shortened to one line, then how much of it the model saw and how much it knew
        total = f"{pred.tokens_total}{'+' if pred.tokens_total_is_lower_bound else ''}"
        seen = f"kept {pred.tokens_kept} of {total} tokens" if pred.truncated \
            else f"{pred.tokens_total} token{'' if pred.tokens_total == 1 else 's'}"
        stats = f"({seen}, {pred.unknown_share:.0%} unknown)"
        click.echo(f"{pred.label}\t{pred.probability:.3f}\t{_one_line(name)}\t{stats}")


def _one_line(text: str, width: int = 60) -> str:
    """A text as one short column: tabs and line breaks would split the tab-separated line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


@cli.command("eval")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--data", "data", required=True, help="mnist, imdb, or a path to your own labelled data.")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Folder holding mnist/imdb files.")
@click.option("--precision", type=click.Choice(PRECISIONS, case_sensitive=False),
              help="For bundles [default: int8 if present].")
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate a seeded sample of this many inputs.")
@click.option("--json", "as_json", is_flag=True)
def eval_(model, data, data_dir, precision, limit, as_json):
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

    report = evaluate_model(model, data, data_dir=data_dir, precision=precision, limit=limit)
    report.pop("predictions")
    report.pop("scores")
    for note in report["notes"]:
        click.echo(f"swarmedge: note: {note}", err=True)
    click.echo(json.dumps(report, indent=2) if as_json else format_report(report))


def _int_list(ctx, param, value):
    if value is None:
        return None
    try:
        items = [int(v) for v in str(value).split(",")]  # an empty item (1,,2) is a typo, not nothing
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers") from None
    if not items or min(items) < 1:
        raise click.BadParameter("values must be positive integers")
    return items


@cli.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--precision", callback=_choice_list(PRECISIONS),
              help="Comma-separated: int8, fp32 [default: every precision the bundle has].")
@click.option("--threads", default="1", show_default=True, callback=_int_list,
              help=f"Comma-separated onnxruntime thread counts ({THREADS_HELP}).")
@click.option("--batch", default="1", show_default=True, callback=_int_list,
              help=f"Comma-separated batch sizes, each 1..{MAX_BATCH}.")
@click.option("--seq-len", callback=_int_list,
              help="Text models: tokens per input, up to the bundle's seq_len [default: seq_len].")
@click.option("--boids", callback=_int_list,
              help="Boid models: boids per input, 1..784 (one per pixel) [default: 150].")
@click.option("--warmup", type=click.IntRange(0, MAX_WARMUP), default=10, show_default=True)
@click.option("--repeat", type=click.IntRange(1, MAX_REPEAT), default=100, show_default=True)
@click.option("--per-op", is_flag=True, help="Add onnxruntime's per-operator times, fp32 and int8 side by side.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Also write the JSON report here.")
@click.option("--remote", metavar="[USER@]HOST[:DIR]", callback=_remote,
              help="Profile on a device over ssh (the bundle is copied there).")
def profile(bundle, precision, threads, batch, seq_len, boids, warmup, repeat, per_op, as_json, output, remote):
    """Measure latency, throughput and memory of BUNDLE on this machine (no torch needed).

    \b
    Examples:
      swarmedge profile small.bundle
      swarmedge profile small.bundle --threads 1,4 --batch 1,8,32 --per-op
      swarmedge profile digits.bundle --boids 50,150,400 --json -o pi5.json
      swarmedge profile small.bundle --remote pi@raspberrypi.local --json -o pi5.json
    """
    from swarmedge.atomic import write_bytes
    from swarmedge.runtimes.profile import profile_bundle
    from swarmedge.summary import profile_table

    if seq_len and boids:
        raise click.UsageError("give --seq-len (text models) or --boids (boid models), not both")
    if output:  # before the measurement, not after it
        from swarmedge.output_paths import check_output_file

        check_output_file(output)
    if remote:
        from swarmedge.remote import remote_profile

        def csv(values):
            return ",".join(map(str, values))

        args = ["--threads", csv(threads), "--batch", csv(batch), "--warmup", str(warmup), "--repeat", str(repeat)]
        args += ["--precision", csv(precision)] if precision else []
        args += (["--seq-len", csv(seq_len)] if seq_len else []) + (["--boids", csv(boids)] if boids else [])
        report = remote_profile(remote, bundle, args + (["--per-op"] if per_op else []))
    else:
        notices: list[str] = []
        report = profile_bundle(bundle, precision, threads, batch, seq_len or boids or None,
                                warmup=warmup, repeat=repeat, per_op=per_op,
                                length_flag="--seq-len" if seq_len else "--boids" if boids else None, notices=notices)
        for notice in notices:
            _note(notice)
    text = json.dumps(report, indent=2)
    if output:
        write_bytes(output, (text + "\n").encode())
    click.echo(text if as_json else profile_table(report))


@cli.command("compare")
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--data", "data", required=True, help="mnist, imdb, or a path to your own labelled data.")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Folder holding mnist/imdb files.")
@click.option("--limit", type=click.IntRange(min=1), help="Compare on a seeded sample of this many inputs.")
@click.option("--latency-inputs", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--profile", "profiles", multiple=True, type=click.Path(path_type=Path),
              help="A `swarmedge profile --json` report from another device, added as a column (repeatable).")
@click.option("--arm", "arm_checks", multiple=True, type=click.Path(path_type=Path),
              help="A `swarmedge arm-check --json` report, added as a table (repeatable).")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("compare-report"), show_default=True,
              help="Directory for report.md, report.json and report.html.")
def compare_cmd(model, bundle, data, data_dir, limit, latency_inputs, profiles, arm_checks, output):
    """PyTorch fp32 vs ONNX fp32 vs ONNX int8 on a test set: accuracy, agreement, errors, latency, size.

    \b
    Examples:
      swarmedge compare digits.pt digits.bundle --data mnist
      swarmedge compare small.pt small.bundle --data imdb --limit 2000 -o report/
      swarmedge compare small.pt small.bundle --data imdb --profile pi5.json
    """
    from swarmedge.errors import require_extra

    require_extra("torch", "export")
    require_extra("matplotlib", "viz")
    from tqdm import tqdm

    from swarmedge.compare import compare
    from swarmedge.reports import check_report_folder, markdown, write_reports

    check_report_folder(output)  # before the evaluation, not after it

    with tqdm(desc="compare", unit="step", file=sys.stderr, disable=None, leave=False) as bar:
        def on_step(step):
            bar.set_postfix_str(step)
            bar.update(1)

        result = compare(model, bundle, data, data_dir=data_dir, limit=limit, latency_inputs=latency_inputs,
                         profiles=profiles, arm_checks=arm_checks, on_step=on_step)
    paths = write_reports(result, output)
    for note in result["notes"]:
        click.echo(f"swarmedge: note: {note}", err=True)
    click.echo(markdown(result))
    click.echo("wrote " + ", ".join(str(p) for p in paths.values()))


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--image", type=click.Path(path_type=Path), help="A digit (PNG/JPEG/npy) to follow through the blocks.")
@click.option("--fields", is_flag=True, help="Draw the first block's vector fields instead (needs the .pt).")
@click.option("--fps", type=click.IntRange(1, 30), default=3, show_default=True)
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help=".gif/.mp4, or .png for --fields")
def visualize(model, image, fields, fps, output):
    """Pictures of the swarm: boids moving block by block (fp32 and int8 side by side), or vector fields.

    \b
    Examples:
      swarmedge visualize digits.bundle --image five.png -o swarm.gif
      swarmedge visualize digits.pt --image five.png -o swarm.mp4
      swarmedge visualize digits.pt --fields -o fields.png
    """
    from swarmedge.errors import require_extra

    require_extra("matplotlib", "viz")
    from swarmedge import visualize as viz

    if fields:
        click.echo(f"wrote {viz.vector_fields(model, output)}")
        return
    if image is None:
        raise click.UsageError("give --image DIGIT (or --fields)")
    from swarmedge.runtimes.images import load_image

    notices: list[str] = []
    digit = load_image(image, notices)
    for notice in notices:
        click.echo(f"swarmedge: note: {notice}", err=True)
    click.echo(f"wrote {viz.swarm_animation(model, digit, output, fps=fps)}")


@cli.command("arm-setup")
@click.option("--rebuild", is_flag=True, help="Build the sysroot again even if the cache has one.")
def arm_setup(rebuild):
    """Build (once) the cached aarch64 sysroot that arm-check runs bundles in.

    \b
    Needs: sudo apt-get install qemu-user-static mmdebstrap
    Examples:
      swarmedge arm-setup
      SWARMEDGE_CACHE=/data/cache swarmedge arm-setup --rebuild
    """
    from tqdm import tqdm

    from swarmedge.arm.sysroot import ensure_sysroot

    with tqdm(desc="arm-setup", unit="step", file=sys.stderr, disable=None, leave=False) as bar:
        def on_step(step):
            bar.set_postfix_str(step)
            bar.update(1)

        root = ensure_sysroot(rebuild=rebuild, on_step=on_step)
    click.echo(f"aarch64 sysroot ready: {root}")


def _arm_cpus():
    from swarmedge.arm.sysroot import CPUS  # lazily: it reads the cache settings

    return list(CPUS)


@cli.command("arm-check")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--cpu", default="cortex-a72,cortex-a76", show_default=True, callback=_choice_list(_arm_cpus),
              help="Emulated CPUs: cortex-a72 = Raspberry Pi 4, cortex-a76 = Raspberry Pi 5.")
@click.option("--precision", default="int8", show_default=True, callback=_choice_list(PRECISIONS),
              help="Comma-separated: int8, fp32.")
@click.option("--data", help="mnist, imdb or your own labelled data [default: the model's data set].")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Folder holding mnist/imdb files.")
@click.option("--limit", type=click.IntRange(min=0),
              help="Seeded sample size [default: 300 digits, 200 reviews; 0: all].")
@click.option("--json", "as_json", is_flag=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Also write the JSON report here.")
def arm_check_cmd(bundle, cpu, precision, data, data_dir, limit, as_json, output):
    """Run BUNDLE on emulated Raspberry Pi 4/5 CPUs (QEMU) and compare with this machine.

    \b
    Examples:
      swarmedge arm-check small.bundle
      swarmedge arm-check digits.bundle --cpu cortex-a72 --precision int8,fp32 --limit 1000
      swarmedge arm-check small.bundle --json -o arm.json     # compare --arm arm.json adds it to a report
    """
    from tqdm import tqdm

    from swarmedge.arm.check import arm_check, format_arm_report
    from swarmedge.atomic import write_bytes
    from swarmedge.output_paths import check_output_file

    if output:  # before the emulated run, not after it
        check_output_file(output)

    with tqdm(desc="arm-check", unit="step", file=sys.stderr, disable=None, leave=False) as bar:
        def on_step(step):
            bar.set_postfix_str(step)
            bar.update(1)

        report = arm_check(bundle, cpu, precision, data, data_dir, limit, on_step=on_step)
    text = json.dumps(report, indent=2)
    if output:
        write_bytes(output, (text + "\n").encode())
    click.echo(text if as_json else format_arm_report(report))


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


cli.add_command(train)


def main() -> None:
    cli(prog_name="swarmedge")


if __name__ == "__main__":
    main()
