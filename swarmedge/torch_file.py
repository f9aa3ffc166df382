"""Reading a PyTorch ``.pt`` file without running code from it.

``torch.load(weights_only=True)`` admits tensors and plain containers, plus the data-only types
training loops store beside the weights. A file it refuses is inspected with ``pickletools``
(nothing executed): a whole pickled ``nn.Module`` gets a re-save command that works.
"""

import os
import pickletools
import stat
import warnings
import zipfile
from pathlib import Path

from swarmedge.bundle_files import entry_kind
from swarmedge.checkpoint_layouts import NEEDED
from swarmedge.errors import CheckpointError


def read_torch_file(path: Path):
    """``torch.load(path, map_location="cpu", weights_only=True)`` with one-line errors.

    Besides tensors and plain containers it admits the data-only types training loops store
    beside the weights (``argparse.Namespace``, numpy scalars); anything else, a whole pickled
    module above all, is refused without being unpickled.

    Raises CheckpointError naming what the file is when it is no checkpoint: not a regular
    file (a FIFO would block the read), neither of torch.save's formats, a damaged or truncated
    zip, a ``pickle.dump`` file, or pickled objects (with a re-save command for a whole module).
    """
    import pickle

    import torch

    kind = _file_kind(path)
    if kind is None:
        raise CheckpointError(f"{path} is not a PyTorch checkpoint: it is neither torch.save's zip format nor "
                              "its older pickle format; check the path, or create one with: swarmedge init")
    if kind == "pickle.dump":
        raise CheckpointError(
            f"{path} was written with pickle.dump, not torch.save, and swarmedge never unpickles objects (it can "
            f"run code); if you trust the file, re-save it: python -c \"import pickle, torch; "
            f"torch.save(pickle.load(open({str(path)!r}, 'rb')), {str(path.with_suffix('.torch.pt'))!r})\"")
    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol on stderr; the error says it all
            warnings.simplefilter("ignore")
            with torch.serialization.safe_globals(_data_only_globals()):
                return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = next((ln.strip() for ln in str(exc).splitlines() if "GLOBAL" in ln or "global" in ln), None)
        if detail is None:
            raise CheckpointError(f"{path} is a damaged PyTorch checkpoint ({_first_line(exc)}); "
                                  "check the file or create one with: swarmedge init") from None
        advice = whole_module_advice(path)
        if advice:
            raise CheckpointError(advice) from None
        raise CheckpointError(
            f"refusing to load {path}: it holds pickled Python objects, not just weights "
            f"({_first_line(detail.removeprefix('WeightsUnpickler error: '))}); "
            "re-save it as {'model_state_dict': model.state_dict(), 'params': {...the model's config...}}"
        ) from None
    except Exception as exc:  # torch.load raises many types (struct.error, RuntimeError, …) on junk
        what = "damaged or truncated" if kind == "zip" else "damaged"
        raise CheckpointError(f"{path} is a {what} PyTorch checkpoint, not a readable one ({_first_line(exc)}); "
                              "check the file or create one with: swarmedge init") from None


# torch.save's older format opens with this number, pickled (torch/serialization.py's MAGIC_NUMBER).
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _file_kind(path: Path) -> str | None:
    """"zip" (torch.save), "legacy" (torch.save before 1.6), "pickle.dump", or None for other bytes.

    Raises CheckpointError for what is not a regular file: opening a FIFO would wait forever."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise CheckpointError(f"{path} is {entry_kind(mode)}, not a checkpoint file; give the path of a .pt")
    with open(path, "rb") as f:
        head = f.read(64)
    if head.startswith(b"PK"):
        return "zip"
    if not head.startswith(b"\x80"):  # every pickle from protocol 2 on opens with PROTO
        return None
    try:  # the first pickled object, read with pickletools: nothing is executed
        first = next(arg for op, arg, _ in pickletools.genops(head + b"." * 8)
                     if op.name not in ("PROTO", "FRAME"))
    except Exception:  # the object is longer than 64 bytes, or the bytes are no pickle
        first = None
    return "legacy" if first == _LEGACY_MAGIC else "pickle.dump"


def _first_line(message, limit: int = 160) -> str:
    """The first line of ``message``, cut at a word (with …) when longer than ``limit``."""
    line = (str(message).splitlines() or [type(message).__name__])[0].strip() or type(message).__name__
    return line if len(line) <= limit else line[:limit].rsplit(" ", 1)[0] + " …"


def _data_only_globals() -> list:
    import argparse

    import numpy as np

    scalar = (getattr(np, "_core", None) or np.core).multiarray.scalar  # numpy 2 renamed core to _core
    dtypes = [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType")]
    # numpy 1.x wrote numpy.core.multiarray.scalar; the same function under numpy 2.
    return [argparse.Namespace, np.dtype, scalar, (scalar, "numpy.core.multiarray.scalar"), *dtypes]


def whole_module_advice(path: Path) -> str | None:
    """The refusal for a pickled ``nn.Module`` with a command that re-saves it loadably, or None.

    The pickle's opcodes are read with ``pickletools`` (nothing is executed) to tell a module
    from other objects, which model it is, and the config values it stores.
    """
    ops = _pickle_ops(path)
    strings = {arg for _, arg in ops if isinstance(arg, str)}
    if not {"_modules", "_parameters"} <= strings:
        return None
    model_type = ("swarmformer" if {"local_agg", "embedding"} <= strings
                  else "boids" if {"encoder_layers", "self_attn"} <= strings else None)
    top_is_dict = bool(ops) and ops[0][0] == "EMPTY_DICT"
    cls, key = _first_object(ops)
    if cls is None or (top_is_dict and key is None):
        return None
    getter = f"[{key!r}]" if top_is_dict else ""
    own = cls.startswith("swarmedge.models.")
    fill = ""
    if own:
        params = "m.config.to_dict()"  # swarmedge's models carry their config
    else:
        # vocab_size, d_model, num_layers… are read from the weights; the rest must be given.
        keys = NEEDED.get(model_type, ())
        found = _pickled_numbers(ops, keys)
        params = "{" + ", ".join(f"{k!r}: {found.get(k, k.upper())}" for k in keys) + "}"
        missing = [k.upper() for k in keys if k not in found]
        fill = (f" (fill in {', '.join(missing)})" if missing
                else "" if keys else " (put the model's config keys in params)")
    out = path.with_name(f"{path.stem}.weights.pt")
    return (
        f"{path} is a whole pickled model (torch.save(model)), which swarmedge never unpickles (it can run code); "
        f"re-save its weights and config, if you trust the file and its class is importable: "
        f"python -c \"import torch; m = torch.load({str(path)!r}, weights_only=False){getter}; "
        f"torch.save({{'model_state_dict': m.state_dict(), 'params': {params}}}, {str(out)!r})\"{fill}, "
        f"then use {out}"
    )


def _pickle_ops(path: Path) -> list[tuple[str, object]]:
    """(opcode name, argument) of the pickle inside a torch zip file, memo opcodes dropped."""
    try:
        with zipfile.ZipFile(path) as z:
            name = next((n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"), None)
            data = z.read(name) if name else b""
        ops = [(op.name, arg) for op, arg, _ in pickletools.genops(data)]
    except Exception:  # not a zip, or a pickle pickletools cannot walk: no advice, the plain refusal
        return []
    memo = {"BINPUT", "LONG_BINPUT", "PUT", "MEMOIZE", "FRAME", "PROTO"}
    return [(n, a) for n, a in ops if n not in memo]


def _first_object(ops) -> tuple[str | None, str | None]:
    """(class, dict key) of the first pickled object that is not a plain container or tensor.

    In a dict holding a module, the module's class GLOBAL comes right after its key.
    """
    plain = ("torch", "collections", "__builtin__", "builtins", "numpy", "argparse", "_codecs")
    for i, (name, arg) in enumerate(ops):
        if name == "GLOBAL" and (not str(arg).startswith(plain) or str(arg).startswith("torch.nn.")):
            prev_name, prev_arg = ops[i - 1] if i else (None, None)
            key = prev_arg if isinstance(prev_arg, str) and "UNICODE" in str(prev_name) else None
            return str(arg).replace(" ", "."), key
    return None, None


def _pickled_numbers(ops, keys) -> dict:
    """Numbers stored right after an attribute name, e.g. a layer's ``self.T_local = 3``."""
    numbers = {"BININT", "BININT1", "BININT2", "INT", "LONG", "LONG1", "BINFLOAT", "NEWTRUE", "NEWFALSE"}
    found: dict = {}
    for (_, arg), (next_name, next_arg) in zip(ops, ops[1:]):
        if isinstance(arg, str) and arg in keys and arg not in found and next_name in numbers:
            found[arg] = {"NEWTRUE": True, "NEWFALSE": False}.get(next_name, next_arg)
    return found
