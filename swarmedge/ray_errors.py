"""Ray's wrapped errors back into swarmedge's one-line errors (for ``swarmedge.ray_data``).

Ray re-raises what a worker raised inside its own error classes, with a traceback and notes
about retries in the message; a user who gave a bad line should read that line's one-line
error, as ``swarmedge run`` prints it on one machine.
"""

import re

from swarmedge import errors
from swarmedge.errors import SwarmedgeError


def unwrap(exc: BaseException) -> BaseException:
    """The swarmedge error inside a Ray error (RayTaskError, UserCodeException, ...), as a
    fresh error of its class with its one-line message, or ``exc`` itself when it holds none.

    Ray wraps what a worker raised in its own traceback, and appends notes about retries to
    the message; swarmedge messages are one line, so the first line is the message.
    """
    seen, todo, dual = set(), [exc], None
    while todo:
        e = todo.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, SwarmedgeError):
            if not _is_ray_error(e):
                return type(e)(str(e).strip().split("\n", 1)[0])
            dual = dual or e  # Ray's class "RayTaskError(InputError)": its message is a traceback
        todo += [getattr(e, "cause", None), e.__cause__, e.__context__]
    if dual is not None:  # Ray kept the error's class, and the error's own line in its traceback text
        base = next(c for c in type(dual).__mro__ if issubclass(c, SwarmedgeError) and not _is_ray_class(c))
        found = _error_line(str(dual), base.__name__)
        return base(found[1] if found else str(dual).strip().splitlines()[-1])
    for e in [exc, getattr(exc, "cause", None)]:  # only the traceback text is left: find the error's line
        found = e is not None and _error_line(str(e))
        if found:
            return getattr(errors, found[0])(found[1])
    return exc


def _error_line(text: str, name: str = r"\w+"):
    """``(class name, message)`` of the last ``swarmedge.errors.NAME: message`` line of a traceback."""
    hits = re.findall(rf"^swarmedge\.errors\.({name}): (.*)$", text, re.M)
    hits = [h for h in hits if isinstance(getattr(errors, h[0], None), type)
            and issubclass(getattr(errors, h[0]), SwarmedgeError)]
    return hits[-1] if hits else None


class ray_errors:
    """``with ray_errors():`` re-raises a swarmedge error that Ray wrapped as that error alone,
    so a user sees one line (``InputError: reviews.jsonl:3: not valid JSON …``), not a Ray
    traceback. Other errors pass through unchanged."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None or isinstance(exc, SwarmedgeError) and not _is_ray_error(exc):
            return False
        inner = unwrap(exc)
        if inner is exc:
            return False
        raise inner from None


def _is_ray_class(cls) -> bool:
    return (cls.__module__ or "").split(".")[0] == "ray"


def _is_ray_error(exc) -> bool:
    return any(_is_ray_class(c) for c in type(exc).__mro__)
