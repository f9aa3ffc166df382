"""Options and option checks shared by the ``swarmedge`` commands (``cli.py``, ``cli_measure.py``)."""

import os
from pathlib import Path

import click

TARGETS = ["auto", "x86", "x86-vnni", "arm64", "pi4", "pi5"]
PRECISIONS = ["int8", "fp32"]
SEEDS = click.IntRange(0, 2**32 - 1)  # numpy's and torch's seeds: unsigned 32-bit is safe for both
THREADS_HELP = "more than the cores this process may use are capped at that number, with a note"


class OutputFile(click.Path):
    """``click.Path(path_type=Path)`` for a file to write. ``-o out/`` is refused: pathlib drops
    the trailing separator, so the folder the user meant would be written as a file."""

    def __init__(self, example: str = "out.pt"):
        super().__init__(path_type=Path)
        self.example = example

    def convert(self, value, param, ctx):
        if isinstance(value, str) and value.endswith(("/", os.sep)):
            self.fail(f"{value!r} ends with {value[-1]!r}, so it names a folder; give a file path, "
                      f"e.g. {value}{self.example}", param, ctx)
        return super().convert(value, param, ctx)


OVERWRITE_HELP = "Replace -o FILE when it exists (its weights are lost)."


def note(notice: str) -> None:
    click.echo(f"swarmedge: note: {notice}", err=True)


def capped_threads(threads):
    """``threads`` capped at the cores this process may use; the notice goes to stderr."""
    from swarmedge.runtimes.batching import clamp_threads

    if threads is None:
        return None
    threads, notice = clamp_threads(threads)
    if notice:
        note(notice)
    return threads


def finite(ctx, param, value):
    # click's FloatRange lets NaN through (every comparison with NaN is false)
    if value is not None and value != value or value in (float("inf"), float("-inf")):
        raise click.BadParameter(f"{value} is not a finite number")
    return value


def choice_list(choices):
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


def check_remote(ctx, param, value):
    # an empty --remote (an unset shell variable, say) would otherwise run here without a word
    if value is not None and not value.strip():
        raise click.BadParameter("an empty host; give [USER@]HOST[:DIR], e.g. pi@raspberrypi.local, "
                                 "or leave --remote out to run on this machine")
    return value


def int_list(ctx, param, value):
    if value is None:
        return None
    try:
        items = [int(v) for v in str(value).split(",")]  # an empty item (1,,2) is a typo, not nothing
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers") from None
    if not items or min(items) < 1:
        raise click.BadParameter("values must be positive integers")
    return items


# --data in every command that reads a labelled data set (eval, compare, arm-check)
DATA_HELP = ("mnist or imdb (found in $SWARMEDGE_DATA or the cache, else downloaded there once), a folder "
             "holding their files, or your own labelled data: a .jsonl of {\"text\", \"label\"} lines or a "
             "folder of images in one sub-folder per label.")
DATA_DIR_HELP = "Folder searched first for mnist/imdb files (the same as --data FOLDER)."

