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
from pathlib import Path

from swarmedge.errors import InputError


def result_record(position: int, name: str | None, pred, record_id=None) -> dict:
    """The JSON record of one result. ``name`` names the input (left out when None: a line of
    a corpus is known by its position and id); ``pred`` is a ``Prediction``; ``record_id`` the
    input record's ``"id"`` (any JSON value; left out when None)."""
    out = {"position": position}
    if record_id is not None:
        out["id"] = record_id
    if name is not None:
        out["input"] = name
    out.update(pred.to_dict())
    return out


def encode_records(records) -> bytes:
    """``records`` as JSON Lines bytes, one compact line each, UTF-8 kept as is."""
    return "".join(json.dumps(r, ensure_ascii=False, separators=(", ", ": ")) + "\n" for r in records).encode()


class ResultsFile:
    """An append-only JSON Lines results file (``run -o FILE``).

    ``ResultsFile(path, resume=True)`` keeps the whole records already in ``path`` (cutting off
    a torn last line, left by a kill mid-write) and ``done`` says how many inputs they cover;
    ``resume=False`` starts an empty file and refuses an existing non-empty one unless
    ``overwrite``. Raises InputError for those refusals, a file that is not a results file
    of ``run`` (records out of order), or a path that cannot be written.
    """

    def __init__(self, path, *, resume: bool = False, overwrite: bool = False):
        self.path = Path(path)
        self.done, self.last = 0, None
        exists = self.path.exists()
        if exists and self.path.is_dir():
            raise InputError(f"-o {self.path} is a folder: give a file name, e.g. -o results.jsonl")
        if exists and not resume and not overwrite and self.path.stat().st_size > 0:
            raise InputError(f"{self.path} exists: pass --resume to continue it, --overwrite to start it again, "
                             "or choose another -o")
        if resume and exists:
            self.done, self.last, keep = _whole_records(self.path)
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
            self._f.write(data)
            self._f.flush()
            self.done += len(records)

    def close(self, failed: bool = False) -> None:
        """Close the file; after a run that ``failed`` before its first result, remove the
        file if this run created it (a refused input leaves nothing behind)."""
        self._f.close()
        if failed and self._created and self.done == 0:
            self.path.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _whole_records(path: Path) -> tuple[int, dict | None, int]:
    """(records, the last one, bytes they take) of the whole records at the start of ``path``.

    A record is whole when its line ends in a newline and parses as a JSON object whose
    ``position`` is its line index; the first line that is not ends the whole part, and only a
    last line may be torn: a bad line followed by more lines means the file is something else.
    """
    n, last, keep = 0, None, 0
    with open(path, "rb") as f:
        for raw in f:
            record = None
            if raw.endswith(b"\n"):
                try:
                    record = json.loads(raw)
                except ValueError:
                    record = None
            if not isinstance(record, dict) or record.get("position") != n:
                if raw.endswith(b"\n") and f.read(1):
                    raise InputError(f"{path}:{n + 1} is not record {n} of a swarmedge run; --resume continues only "
                                     "a results file that run -o wrote: choose another -o")
                break
            n, last, keep = n + 1, record, keep + len(raw)
    return n, last, keep
