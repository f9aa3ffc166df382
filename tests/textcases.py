"""What the text tests share: sample texts and the CLI run in-process or as on a device."""

import gzip
import json
import os
import subprocess
import sys

from click.testing import CliRunner

from swarmedge.cli import cli

TEXTS = ["the film was good", "an awful plot , not great !", "a movie about a bad actor"]


def device_cli(args, stdin: bytes = b"") -> tuple[int, str, str]:
    """The CLI in a subprocess without torch/onnx, argv and stdin passed as bytes, as a shell does
    (Python decodes non-UTF-8 argv bytes to lone surrogates: surrogateescape)."""
    code = ("import sys; sys.modules['torch'] = None; sys.modules['onnx'] = None; "
            "sys.modules['onnxscript'] = None; from swarmedge.cli import main; sys.argv[0] = 'swarmedge'; main()")
    r = subprocess.run([sys.executable, "-c", code, *map(os.fsencode, args)], input=stdin,
                       capture_output=True, timeout=120)
    return r.returncode, r.stdout.decode("utf-8"), r.stderr.decode("utf-8")


def cli_run(args, stdin: bytes | None = None) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, [str(a) for a in args], input=stdin)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception  # a traceback in real life: fail loudly with it
    return r.exit_code, r.stdout, r.stderr


def refused(result, *needles) -> str:
    """Assert a one-line error with exit 2 holding each needle; return the message."""
    rc, out, err = result
    assert rc == 2, (rc, out, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("swarmedge: error: "), err
    for needle in needles:
        assert needle in err, (needle, err)
    return err.strip().removeprefix("swarmedge: error: ")


def jsonl_rows(result) -> list[dict]:
    rc, out, err = result
    assert rc == 0, err
    return [json.loads(line) for line in out.splitlines()]


def write_gz(path, data: bytes):
    path.write_bytes(gzip.compress(data))
    return path
