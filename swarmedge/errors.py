"""Errors that swarmedge raises for user mistakes and failed checks.

Every message says what is wrong and what to do about it; the CLI prints it as one
line on stderr and exits non-zero, never with a traceback.
"""


class SwarmedgeError(Exception):
    """Base class: a problem the user can fix, described in one line."""

    exit_code = 1


class InputError(SwarmedgeError):
    """Bad input: a file that is missing or undecodable, an empty text, a wrong shape."""

    exit_code = 2


class CheckpointError(SwarmedgeError):
    """A model checkpoint that cannot be loaded safely or is not one swarmedge knows."""

    exit_code = 2


class BundleError(SwarmedgeError):
    """A bundle that is missing, incomplete, corrupt or tampered with."""

    exit_code = 2


class ParityError(SwarmedgeError):
    """ONNX and PyTorch disagree beyond tolerance."""

    exit_code = 3


class MissingExtraError(SwarmedgeError):
    """An optional dependency group is not installed."""

    exit_code = 4


def require_extra(module: str, extra: str) -> None:
    """Import ``module`` or raise an error naming the pip command that installs it.

    >>> require_extra("json", "export")
    """
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"this needs {module}, which is not installed: pip install 'swarmedge[{extra}]'"
        ) from exc
