"""What the image tests share: the CLI in-process and its one-line refusals."""

import json

from click.testing import CliRunner

from swarmedge.cli import cli

LEVEL = 1 / 255 + 1e-6  # "equal up to rounding" for one 8-bit step


def cli_result(*args):
    """swarmedge ARGS in-process, stdout and stderr kept apart."""
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result


def run_labels(result) -> list[str]:
    """The labels of run's results, JSON Lines (the default off a terminal) or a table."""
    return [json.loads(line)["label"] if line.startswith("{") else line.split("\t")[0]
            for line in result.stdout.splitlines()]


def assert_one_line_error(result, needle: str) -> None:
    """Exit 2, one 'swarmedge: error:' line on stderr holding NEEDLE, nothing on stdout."""
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("swarmedge: error:"), err
    assert needle in err and "Traceback" not in result.output, err
    assert result.stdout == ""
