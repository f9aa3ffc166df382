"""Results of ``swarmedge run`` as JSON Lines: one record per input, written chunk by chunk.

A record is ``{"position": 0, "id": …, "label": …, "index": …, "probability": …, "scores":
[…], …}``: ``position`` counts inputs from 0 in input order (blank lines are not inputs),
``id`` is the input record's own ``"id"`` field when it has one. Inputs that have a name of
their own also get ``input``: the text of a ``--text``, an image's path, ``digits.npy[5]``.
A corpus's lines get none: copying a million texts into the results would double them, and
``position``/``id`` already join a result to its input.

:class:`ResultsFile` appends whole records and flushes after each chunk, so a run that is
killed leaves whole records plus, at worst, one torn last line; ``--resume`` cuts that line
off and skips the inputs already done, checking that the file belongs to this input.
"""

import json
import os
from collections import deque
from pathlib import Path

from swarmedge.errors import InputError

NO_ID = type("NoId", (), {"__repr__": lambda self: "NO_ID"})()  # a record without "id" (an "id": null is None)
RECORD_START = b'{"position": '  # how every record's line begins: a torn last line begins so too
CHECKED_ON_RESUME = 8  # the last records --resume classifies again to check they came from this input


def result_record(position: int, name: str | None, pred, record_id=NO_ID) -> dict:
    """The JSON record of one result. ``name`` names the input (left out when None: a line of
    a corpus is known by its position and id); ``pred`` is a ``Prediction``; ``record_id`` the
    input record's ``"id"`` (any JSON value, null included; left out when ``NO_ID``)."""
    out = {"position": position}
    if record_id is not NO_ID:
        out["id"] = record_id
    if name is not None:
        out["input"] = name
    out.update(pred.to_dict())
    return out


def encode_records(records) -> bytes:
    """``records`` as JSON Lines bytes, one line each, UTF-8 kept as is. NaN and infinities
    raise ValueError: they are not JSON (inputs holding them are refused when read)."""
    return "".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in records).encode()


class ResultsFile:
    """An append-only JSON Lines results file (``run -o FILE``).

    ``ResultsFile(path, resume=True)`` keeps the whole records already in ``path`` (cutting off
    a torn last line, left by a kill mid-write) and ``done`` says how many inputs they cover;
    ``tail`` holds the last ``CHECKED_ON_RESUME`` of them, to check against the input;
    ``resume=False`` starts an empty file and refuses an existing non-empty one unless
    ``overwrite``. Raises InputError for those refusals, a file that is not a results file
    of ``run`` (records out of order), or a path that cannot be written.
    """

    def __init__(self, path, *, resume: bool = False, overwrite: bool = False):
        self.path = Path(path)
        self.done, self.tail = 0, []
        exists = self.path.exists()
        if exists and self.path.is_dir():
            raise InputError(f"-o {self.path} is a folder: give a file name, e.g. -o results.jsonl")
        if exists and not resume and not overwrite and self.path.stat().st_size > 0:
            raise InputError(f"{self.path} exists: pass --resume to continue it, --overwrite to start it again, "
                             "or choose another -o")
        if resume and exists:
            self.done, self.tail, keep = _whole_records(self.path)
            if keep < self.path.stat().st_size:  # a torn last record: cut it off before appending
                os.truncate(self.path, keep)
        mode = "ab" if resume else "wb"
        self._created = not exists
        try:
            self._f = open(self.path, mode)  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise InputError(f"cannot write -o {self.path}: {exc.strerror or exc}") from None

    def write(self, records) -> None:
        """Append ``records`` (dicts) as whole lines and flush them to the file."""
        data = encode_records(records)
        if data:
            try:
                self._f.write(data)
                self._f.flush()
            except OSError as exc:  # name the file, not standard output
                raise OSError(exc.errno, exc.strerror, str(self.path)) from None
            self.done += len(records)

    def close(self, failed: bool = False) -> None:
        """Close the file; after a run that ``failed`` before its first result, remove the
        file if this run created it (a refused input leaves nothing behind)."""
        try:
            self._f.close()
        except OSError as exc:  # a write that failed is still buffered: its error is already on its way
            if not failed:
                raise OSError(exc.errno, exc.strerror, str(self.path)) from None
        if failed and self._created and self.done == 0:
            self.path.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _whole_records(path: Path) -> tuple[int, list[dict], int]:
    """(records, the last ``CHECKED_ON_RESUME`` of them, bytes they take) of ``path``.

    Every line must be the record of its index (``position``), ending in a newline, except a
    last line with no newline that begins as a record does (``RECORD_START``): a kill tore it
    while it was written. Any other line means the file is not run's results: InputError, so
    that --resume never cuts what it did not write.
    """
    n, tail, keep = 0, deque(maxlen=CHECKED_ON_RESUME), 0
    with open(path, "rb") as f:
        for raw in f:
            record = None
            if raw.endswith(b"\n"):
                try:
                    record = json.loads(raw)
                except ValueError:
                    record = None
            elif raw.startswith(RECORD_START) or RECORD_START.startswith(raw):
                break  # torn: cut off
            if not isinstance(record, dict) or record.get("position") != n:
                raise InputError(f"{path}:{n + 1} is not record {n} of a swarmedge run; --resume continues only "
                                 "a results file that run -o wrote: choose another -o")
            n, keep = n + 1, keep + len(raw)
            tail.append(record)
    return n, list(tail), keep
