"""Progress of a long command, on stderr: a bar on a terminal, one line per stage elsewhere.

A job that runs for minutes must show that it is alive wherever it runs: a terminal gets a
tqdm bar that redraws in place; a log file, a pipe or CI gets one line per stage
(``swarmedge: eval: classify 5,000 of 25,000 inputs``), because a bar redrawn with carriage
returns is unreadable there. Those lines start once the command has run for ``QUIET_FOR_S``:
a command that is done (or refused) sooner says nothing but its result. ``--quiet``, or the
environment variable ``SWARMEDGE_QUIET=1`` (for scripts and CI logs), silences both. Never on
stdout, where results and ``--json`` go.
"""

import os
import sys
import threading
import time

import click

QUIET_FOR_S = 2.0


class Stages:
    """``on_step(stage)`` for a command: call it as each stage starts.

    >>> with Stages("export", total=6) as on_step:  # doctest: +SKIP
    ...     on_step("parity")
    """

    def __init__(self, command: str, total: int | None = None, quiet: bool = False, unit: str = "step"):
        quiet = quiet or os.environ.get("SWARMEDGE_QUIET", "") not in ("", "0")
        self.command, self.quiet = command, quiet
        terminal = not quiet and sys.stderr is not None and sys.stderr.isatty()
        self._bar, self._timer, self._lock = None, None, threading.Lock()
        self._started, self._stage, self._said = False, None, None
        self._t0 = time.monotonic()
        if terminal:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=command, unit=unit, file=sys.stderr, leave=False)
        elif not quiet:  # the stage running when QUIET_FOR_S passes is said then, not at its end
            self._timer = threading.Timer(QUIET_FOR_S, self._say)
            self._timer.daemon = True
            self._timer.start()

    def __call__(self, stage: str) -> None:
        if self._bar is not None:
            if self._started:
                self._bar.update(1)
            self._bar.set_postfix_str(stage)
        self._started = True
        with self._lock:
            self._stage = stage
        if self._timer is not None and time.monotonic() - self._t0 >= QUIET_FOR_S:
            self._say()

    def _say(self) -> None:
        with self._lock:
            if self._stage is None or self._stage == self._said or self._timer is None:
                return
            self._said = self._stage
            click.echo(f"swarmedge: {self.command}: {self._stage}", err=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.close()
        if self._timer is not None:
            self._timer.cancel()
            with self._lock:
                self._timer = None  # a timer already firing says nothing after the end
        return False


QUIET_HELP = "No progress on stderr (a bar on a terminal, one line per stage otherwise); also SWARMEDGE_QUIET=1."
