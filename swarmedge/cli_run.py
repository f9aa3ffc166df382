"""``swarmedge run``: classify a stream of inputs, writing each chunk's results as it is done."""

import os
import sys
import tempfile
from pathlib import Path

import click

from swarmedge.cli_errors import Command
from swarmedge.cli_options import PRECISIONS, THREADS_HELP, capped_threads, check_remote, note
from swarmedge.errors import InputError, SwarmedgeError

FORMATS = ("auto", "jsonl", "table")


@click.command(cls=Command)
@click.argument("bundle", type=click.Path(path_type=Path))
@click.argument("stdin", required=False, metavar="[-]")
@click.option("--text", "texts", multiple=True, help="A text to classify (repeatable).")
@click.option("--file", "file", type=click.Path(path_type=Path),
              help="Texts, one per line (.txt) or one {\"text\": …} per line (.jsonl), either optionally .gz; "
                   "or digits (.npy/.npz of N x 28 x 28, memory mapped).")
@click.option("--image", "images", multiple=True, type=click.Path(path_type=Path),
              help="A PNG/JPEG/npy digit image, or a folder of them (repeatable).")
@click.option("--precision", type=click.Choice(PRECISIONS, case_sensitive=False),
              help="[default: int8 if the bundle has it]")
@click.option("--threads", type=click.IntRange(min=1),
              help=f"Inputs classified in parallel, one onnxruntime thread each [default: all cores; {THREADS_HELP}].")
@click.option("--format", "fmt", type=click.Choice(FORMATS, case_sensitive=False), default="auto", show_default=True,
              help="jsonl: one JSON object per input, keyed by \"position\" (and the input's \"id\"); table: label, "
                   "probability and input, tab-separated; auto: table on a terminal, else jsonl.")
@click.option("--json", "as_json", is_flag=True, help="Same as --format jsonl.")
@click.option("-o", "--output", type=click.Path(),
              help="Write the JSON Lines results to this file chunk by chunk (a killed run leaves whole records).")
@click.option("--resume", is_flag=True, help="Continue -o FILE: skip the inputs it already holds results for.")
@click.option("--overwrite", is_flag=True, help="Start -o FILE again when it exists.")
@click.option("--chunk-size", type=click.IntRange(min=1, max=4096), default=256, show_default=True,
              help="Inputs read, classified and written at a time; memory follows it, results do not.")
@click.option("--remote", metavar="[USER@]HOST[:DIR]", callback=check_remote,
              help="Run on a device over ssh (the bundle is copied there).")
@click.option("--ray", "ray_address", metavar="ADDRESS",
              help="Classify --file on a Ray cluster (the [ray] extra): auto (on a node of the cluster), or local "
                   "(a cluster of this machine's cores). -o FILE gets run's records in input order; -o FOLDER/ gets "
                   "shards. See docs/RAY.md.")
def run(bundle, stdin, texts, file, images, precision, threads, fmt, as_json, output, resume, overwrite,
        chunk_size, remote, ray_address):
    """Classify texts or digit images with BUNDLE (device side: no torch needed).

    Inputs stream through: results of each chunk are written as soon as it is classified,
    and memory follows --chunk-size, not the size of the input.

    \b
    Examples:
      swarmedge run small.bundle --text "A wonderful, moving film." --text "Dull."
      cat reviews.txt | swarmedge run small.bundle - > results.jsonl
      swarmedge run small.bundle --file corpus.jsonl.gz -o results.jsonl --resume
      swarmedge run small.bundle --file corpus.jsonl.gz -o results.jsonl --ray auto
      swarmedge run digits.bundle --image five.png --image scans/ --precision fp32
      swarmedge run small.bundle --text "Loved it." --remote pi@raspberrypi.local
    """
    if stdin not in (None, "-"):
        raise click.BadParameter(f"unexpected argument {stdin!r}; use - to read texts from stdin")
    if file is not None and str(file) == "-" and not stdin:  # --file - reads stdin, as the bare - does
        file, stdin = None, "-"
    if sum(bool(s) for s in (texts, file, images, stdin)) != 1:
        raise click.UsageError("give exactly one of --text, --file, --image or - (stdin)")
    if as_json:
        if fmt == "table":
            raise click.UsageError("--json is --format jsonl; give one of --json and --format table")
        fmt = "jsonl"
    if (resume or overwrite) and output is None:
        raise click.UsageError("--resume and --overwrite act on -o FILE; give -o results.jsonl")
    if resume and overwrite:
        raise click.UsageError("give --resume (continue -o FILE) or --overwrite (start it again), not both")
    if output is not None and fmt == "table":
        raise click.UsageError("-o writes JSON Lines; drop --format table")
    if output is not None and file is not None and _same_file(output, file):
        raise click.UsageError(f"-o {output} is the input file itself; write the results elsewhere")
    if ray_address is not None:
        # output stays a str: "results/" (a folder of shards) keeps its slash
        return _ray(bundle, file, output, ray_address, precision=precision, threads=threads, resume=resume,
                    overwrite=overwrite, chunk_size=chunk_size, others=bool(texts or images or stdin or remote))
    if remote:
        if output is not None:
            raise click.UsageError("--remote prints the results here; redirect them (> results.jsonl) instead of -o")
        return _remote(remote, bundle, stdin, texts, file, images, precision, threads, fmt)
    threads = capped_threads(threads)  # here, not before --remote: the device has its own cores
    if stdin and sys.stdin is None:
        raise click.UsageError("- reads texts from stdin, but stdin is closed; pipe texts in, or use --text/--file")
    if fmt == "auto":
        fmt = "table" if output is None and sys.stdout.isatty() else "jsonl"
    _stream(bundle, texts=list(texts), file=file, images=list(images), stdin=sys.stdin.buffer if stdin else None,
            precision=precision, threads=threads, fmt=fmt, output=None if output is None else Path(output),
            resume=resume, overwrite=overwrite, chunk_size=chunk_size)


def _stream(bundle, *, texts, file, images, stdin, precision, threads, fmt, output, resume, overwrite, chunk_size):
    from swarmedge.runtimes.classifier import Classifier
    from swarmedge.runtimes.results import ResultsFile, encode_records, result_record
    from swarmedge.runtimes.run import input_chunks, predict_chunks

    clf = Classifier(bundle, precision=precision, threads=threads)
    notices: list[str] = []
    sink = ResultsFile(output, resume=resume, overwrite=overwrite) if output is not None else None
    skip = sink.done if sink else 0
    failed = True
    try:
        chunks = input_chunks(clf.kind, texts=texts, file=file, images=images, stdin=stdin, notices=notices,
                              size=chunk_size)
        check = _same_results(clf, output, sink.tail) if sink and sink.tail else None
        for pairs in predict_chunks(clf, chunks, skip=skip, check_skipped=check, check_last=len(sink.tail) if sink
                                    else 0, notices=notices):
            _flush_notes(notices)
            records = [result_record(item.position, item.name, pred, item.id) for item, pred in pairs]
            if sink:
                sink.write(records)
            elif fmt == "jsonl":
                sys.stdout.flush()  # bytes go under the text layer: nothing of it may be pending
                sys.stdout.buffer.write(encode_records(records))
                sys.stdout.buffer.flush()
            else:
                click.echo("\n".join(_table_row(item, pred) for item, pred in pairs))
        _flush_notes(notices)
        failed = False
    except InputError as exc:  # notices about the failing chunk are dropped: the error is the one line
        if sink and sink.done > skip:
            raise InputError(f"{exc}; the first {sink.done:,} results are in {output}: fix the input and rerun "
                             "with --resume to go on from there") from None
        raise
    except KeyboardInterrupt:
        if sink:
            click.echo(f"swarmedge: interrupted; {sink.done:,} whole results are in {output}: rerun with --resume to "
                       "go on from there", err=True)
            sys.exit(130)
        raise
    finally:
        if sink:
            sink.close(failed)
    if sink:
        resumed = f" ({skip:,} from before, kept)" if skip else ""
        note(f"wrote {sink.done:,} results to {output}{resumed}")


def _ray(bundle, file, output, address, *, precision, threads, resume, overwrite, chunk_size, others):
    import logging

    from swarmedge.ray_data import classify_corpus

    if others or file is None or output is None:
        raise click.UsageError("--ray classifies a corpus file on a cluster: give --file CORPUS and -o results.jsonl "
                               "(or -o FOLDER/)")
    if resume:
        raise click.UsageError("--resume continues a run on this machine; a --ray run writes its results whole, "
                               "so rerun it with --overwrite")
    if not address.strip():
        raise click.BadParameter("an empty address; give auto, ray://HEAD:10001 or local", param_hint="'--ray'")
    logging.getLogger("ray").setLevel(logging.CRITICAL)
    # Ray's processes log to stderr (start-up notes, a failing worker's traceback): that goes to a
    # file, named only if the run fails, and the user reads swarmedge's one line
    with tempfile.NamedTemporaryFile(prefix="swarmedge-ray-", suffix=".log", delete=False) as log:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            n = classify_corpus(bundle, file, output, address=None if address == "local" else address,
                                precision=precision, batch_size=chunk_size, concurrency=threads, overwrite=overwrite)
        except SwarmedgeError as exc:
            if os.path.getsize(log.name) == 0:  # refused before Ray started: nothing to look at
                os.unlink(log.name)
                raise
            raise type(exc)(f"{exc} (Ray's log: {log.name})") from None
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    os.unlink(log.name)
    note(f"wrote {n:,} results to {output} (Ray)")


def _same_results(clf, output, tail: list[dict]):
    """A check for ``predict_chunks``: the last done inputs, classified again, must give the
    records ``tail`` holds, byte for byte (scores are the same whatever the batch or threads).
    Another input, bundle or precision gives other records: the results are not continued."""
    from swarmedge.runtimes.results import encode_records, result_record

    def check(items):
        values = [item.value for item in items]
        preds = clf.classify_texts(values) if clf.kind == "text" else clf.classify_images(values)
        again = encode_records(result_record(i.position, i.name, p, i.id) for i, p in zip(items, preds))
        if again != encode_records(tail):
            first = tail[0]["position"]
            raise InputError(f"{output} records {first}..{first + len(tail) - 1} are not what this input gives with "
                             f"this bundle at {clf.precision}: they come from another input, bundle or precision; "
                             "choose another -o, or --overwrite to start again")
    return check


def _same_file(output, file) -> bool:
    try:
        return Path(output).resolve() == Path(file).resolve()
    except OSError:
        return False


def _flush_notes(notices: list[str]) -> None:
    for notice in notices:
        note(notice)
    notices.clear()


def _table_row(item, pred) -> str:
    if pred.tokens_kept is None:  # an image: its file name
        return f"{pred.label}\t{pred.probability:.3f}\t{item.name}"
    # a text: shortened to one line, then how much of it the model saw and how much it knew
    total = f"{pred.tokens_total}{'+' if pred.tokens_total_is_lower_bound else ''}"
    seen = f"kept {pred.tokens_kept} of {total} tokens" if pred.truncated \
        else f"{pred.tokens_total} token{'' if pred.tokens_total == 1 else 's'}"
    return f"{pred.label}\t{pred.probability:.3f}\t{_one_line(item.value)}\t({seen}, {pred.unknown_share:.0%} unknown)"


def _one_line(text: str, width: int = 60) -> str:
    """A text as one short column: tabs and line breaks would split the tab-separated line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _remote(remote, bundle, stdin, texts, file, images, precision, threads, fmt):
    from swarmedge.remote import remote_run
    from swarmedge.runtimes.textfiles import read_stream

    args = [a for t in texts for a in ("--text", t)] + [a for i in images for a in ("--image", Path(i).name)]
    args += (["--file", file.name] if file else []) + (["-"] if stdin else [])
    args += (["--precision", precision] if precision else []) + (["--threads", str(threads)] if threads else [])
    if fmt == "auto":
        fmt = "table" if sys.stdout.isatty() else "jsonl"
    files = [*images, *([file] if file else [])]
    out = remote_run(remote, bundle, args + ["--format", fmt], files,
                     read_stream(sys.stdin.buffer, "stdin") if stdin else None)
    click.echo(out, nl=False)
