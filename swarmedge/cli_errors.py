"""click's usage errors in swarmedge's form: one line on stderr, naming the command and its help.

click prints a usage error as four lines (usage, "Try ... --help", a blank line, "Error: ...");
swarmedge's own errors are one line. :class:`CommandGroup` (and the commands it makes) make
sure every usage error knows the command it concerns, and :func:`one_line` turns it into
``swarmedge: error: run: invalid value for '--threads': 0 is not in the range x>=1 (see:
swarmedge run --help)`` with click's exit code (2). cli.py's top-level group applies it.
"""

import re

import click


class OneLineError(click.ClickException):
    """A click error (bad option value, unknown option, missing argument...) shown as
    swarmedge shows its own: one line on stderr, with click's exit code (2 for usage)."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file=None) -> None:
        click.echo(f"swarmedge: error: {self.message}", err=True)


def one_line(exc: click.ClickException) -> OneLineError:
    """``exc``'s own message on one line, after the command it concerns and before the help
    command that explains it: ``run: invalid value for '--threads': ... (see: swarmedge run --help)``."""
    message = " ".join(exc.format_message().split()).rstrip(".")
    # click capitalises its sentences; ours read as one: "missing argument 'X'; choose from: ..."
    message = re.sub(r"\. ([A-Z])(?=[a-z])", lambda m: "; " + m.group(1).lower(), message)
    message = message[:1].lower() + message[1:].replace(". (Did you mean", " (did you mean")
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        command = ctx.command_path.partition(" ")[2]  # without the program name
        if command:
            message = f"{command}: {message}"
        message += f" (see: {ctx.command_path} --help)"
    return OneLineError(message, exc.exit_code)


class _KnowsItsContext:
    """Usage errors raised while parsing a command's arguments carry that command's context
    (click's parser leaves it out of some, e.g. "option '--text' requires an argument")."""

    def parse_args(self, ctx, args):
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            if exc.ctx is None:
                exc.ctx = ctx
            raise


class Command(_KnowsItsContext, click.Command):
    """A click command whose usage errors name it."""


class CommandGroup(_KnowsItsContext, click.Group):
    """A click group whose usage errors, and its commands' and sub-groups', name the command."""

    command_class = Command
    group_class = type  # sub-groups are of this class too


class ErrorsInOneLine(CommandGroup):
    """The top-level group: every click error below it (its own arguments in make_context;
    its commands' in invoke: resolving, parsing and running them) becomes :func:`one_line`.
    Help, --version and the help a bare group prints (NoArgsIsHelpError) stay click's."""

    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except (click.exceptions.NoArgsIsHelpError, OneLineError):
            raise
        except click.ClickException as exc:
            raise one_line(exc) from exc

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.NoArgsIsHelpError, OneLineError):
            raise
        except click.ClickException as exc:
            raise one_line(exc) from exc
