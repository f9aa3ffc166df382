"""Where swarmedge may write: output paths that never destroy a user's files or break a bundle.

Every command that writes (``export``, ``init``, ``train``, ``profile -o``, ``compare -o``,
``visualize -o``, ``arm-check -o``) goes through these checks, so that:

- nothing is written inside an existing bundle (its directory holds only the files its
  manifest lists; one more file and the bundle is refused when opened);
- a folder is never renamed over by a file (``os.replace`` onto a folder fails mid-way);
- ``export`` replaces an existing folder only when it is an empty folder, or a swarmedge
  bundle holding nothing but its manifest and the files the manifest lists.

Device side: standard library only.
"""

import json
import os
import stat
from pathlib import Path

from swarmedge.errors import InputError
from swarmedge.manifest import FORMAT, MANIFEST, MAX_MANIFEST_BYTES


def bundle_manifest(folder: Path) -> dict | None:
    """The parsed ``folder/manifest.json`` when it is a swarmedge bundle manifest, else None.

    A bundle manifest is a JSON object whose ``format`` is ``swarmedge.bundle``; nothing else
    of it is checked (a damaged bundle is still a bundle). Never raises: an unreadable,
    oversized (> ``MAX_MANIFEST_BYTES``) or non-JSON manifest gives None.
    """
    try:
        with open(Path(folder) / MANIFEST, "rb") as f:
            data = f.read(MAX_MANIFEST_BYTES + 1)
    except OSError:  # missing, a folder, no permission
        return None
    if len(data) > MAX_MANIFEST_BYTES:
        return None
    try:
        manifest = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("format") == FORMAT else None


def bundle_containing(path: Path) -> Path | None:
    """The nearest bundle folder strictly above ``path``, or None.

    ``path`` may be relative and need not exist; its parent folders are resolved (symbolic
    links followed), so a link into a bundle counts as inside it. ``path`` itself is not
    looked at (``export`` replaces a bundle in place; see :func:`check_bundle_target`).
    Walks up to the filesystem root.
    """
    path = Path(path).absolute()
    if path.name == "..":  # "x/.." names a folder above: resolve it before taking the parent
        path = path.resolve()
    folder = path.parent.resolve()
    while True:
        if bundle_manifest(folder) is not None:
            return folder
        if folder.parent == folder:
            return None
        folder = folder.parent


def check_output_file(path: Path, example: str | None = None) -> None:
    """Raise InputError (one line) unless ``path`` may be written as a file.

    Refused: an existing folder at ``path`` (``example`` names a file to suggest inside it,
    default ``out`` with ``path``'s suffix when that is a file type such as ``.json``), and any
    ``path`` inside a bundle.
    """
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except OSError:  # nothing there (or unreadable: writing says why)
        mode = None
    if mode is not None and stat.S_ISDIR(mode) or mode is not None and stat.S_ISLNK(mode) and path.is_dir():
        typed = path.suffix[1:].isalpha()  # a folder "runs.37x4" has no file type to suggest
        name = example or (f"out{path.suffix}" if typed else "FILENAME")
        if bundle_manifest(path) is not None:  # nothing may be written inside a bundle: suggest beside it
            beside = path.with_name(path.stem + Path(example).suffix) if example else path.parent / "FILENAME"
            raise InputError(f"{path} is a bundle; give a file path outside it, e.g. {beside}")
        raise InputError(f"{path} is a folder; give a file path, e.g. {path / name}")
    if mode is not None and not stat.S_ISREG(mode):
        # the write renames a new file into place: it would replace a link, a device (/dev/null,
        # /dev/stdout) or a FIFO with a plain file rather than write through it
        what = "a symbolic link" if stat.S_ISLNK(mode) else "a device, FIFO or socket"
        raise InputError(f"{path} is {what}, not a regular file: swarmedge writes a new file in its place; "
                         "give the path of a regular file, or a new one")
    _refuse_inside_bundle(path)


CHECKPOINT_SUFFIXES = (".pt", ".pth")  # PyTorch's own names for torch.save files


def check_checkpoint_output(path: Path) -> None:
    """Raise InputError (one line) unless ``path`` may be written as a checkpoint: a ``.pt`` or
    ``.pth`` file (``-o model.onnx`` or ``-o results.json`` on ``train`` is a mix-up, not a
    checkpoint name), and everything :func:`check_output_file` asks."""
    path = Path(path)
    check_output_file(path, example="model.pt")
    if path.suffix.lower() not in CHECKPOINT_SUFFIXES:
        stem = path.stem.rstrip(".")
        for suffix in CHECKPOINT_SUFFIXES:  # x.pt.bak -> x.pt, not x.pt.pt
            stem = stem[:-len(suffix)] if stem.lower().endswith(suffix) else stem
        stem = stem if stem.strip(".") else "model"  # ".pt" and "x/.." name no file to keep
        raise InputError(f"{path}: a checkpoint is written as a .pt (or .pth) file; give e.g. "
                         f"-o {path.with_name(stem + '.pt')}")


def check_new_checkpoint(path: Path, overwrite: bool, also: str = "") -> None:
    """Raise InputError (one line) if ``path`` already holds a file and ``overwrite`` is not set:
    a checkpoint written over it would lose trained weights. ``also`` adds another way out."""
    path = Path(path)
    if path.is_file() and not overwrite:
        raise InputError(f"{path} exists and would be replaced: give another -o{also}, "
                         "or --overwrite to replace it")


def check_output_folder(path: Path, flag: str = "-o") -> None:
    """Raise InputError (one line) unless files may be written into the folder ``path``.

    Refused: an existing file at ``path``, a bundle at ``path``, and a ``path`` inside a bundle.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path} is a file; {flag} takes a folder")
    if path.is_dir() and bundle_manifest(path) is not None:
        raise InputError(f"{path} is a bundle; write elsewhere (another {flag} folder)")
    _refuse_inside_bundle(path)


# Names a new bundle folder is not given: each reads as one file of the export.
FILE_SUFFIXES = {".onnx", ".ort", ".pt", ".pth", ".json", ".zip", ".tar", ".gz", ".tgz", ".bin"}


def check_bundle_target(out: Path) -> None:
    """Raise InputError (one line) unless ``export`` may create or replace the folder ``out``.

    Allowed: a missing path, an empty folder, or a swarmedge bundle (manifest.json with
    ``"format": "swarmedge.bundle"``) whose every entry is ``manifest.json`` or a file its
    manifest lists (a damaged bundle with listed files missing may be replaced). Refused: a
    file at ``out``, any other folder (naming the first entry that would be lost), a listed
    name that is a folder, an ``out`` inside a bundle, and a new ``out`` named like a file
    (``model.onnx``: FILE_SUFFIXES). A link to a folder is judged by
    the folder it points to (that folder is what the export replaces).
    """
    out = Path(out)
    try:
        target = out.resolve(strict=False) if out.is_symlink() else out
    except (OSError, RuntimeError):  # a symbolic link loop
        raise InputError(f"{out} is a symbolic link that leads nowhere (a loop); remove it or choose another -o") \
            from None
    _refuse_inside_bundle(target, shown=out)
    cwd = Path.cwd().resolve()
    if target.exists() and (target.resolve() == cwd or target.resolve() in cwd.parents):
        raise InputError(f"{out} is the folder you are in (or holds it); export replaces it whole: "
                         "run export from outside it")
    if not target.exists():
        if out.suffix.lower() in FILE_SUFFIXES:  # `-o model.onnx` would make a folder of that name
            raise InputError(f"-o {out} names a file, but export writes a bundle folder (the ONNX models and "
                             f"manifest.json inside it): give a folder such as -o {out.with_suffix('.bundle')}")
        return
    if not target.is_dir():
        raise InputError(f"{out} is a file; -o takes a bundle folder: choose another -o or remove it")
    try:
        entries = sorted(os.listdir(target))
    except OSError as exc:
        raise InputError(f"cannot read {out}: {exc.strerror or exc}; choose another -o") from None
    if not entries:
        return
    manifest = bundle_manifest(target)
    if manifest is None:
        raise InputError(f"{out} exists and is not a swarmedge bundle (it holds {entries[0]!r}); "
                         "export would delete it: choose another -o, or move its contents out")
    files = manifest.get("files")
    listed = set(files) if isinstance(files, dict) else set()
    for name in entries:
        if name == MANIFEST:
            continue
        entry = target / name
        if name not in listed or (entry.is_dir() and not entry.is_symlink()):
            raise InputError(f"{out} holds {name!r}, which is not part of the bundle and would be deleted by "
                             f"replacing it; move {name!r} out of {out}, or choose another -o")


def _refuse_inside_bundle(path: Path, shown: Path | None = None) -> None:
    bundle = bundle_containing(path)
    if bundle is not None:
        raise InputError(f"{shown or path} is inside bundle {bundle}; write it elsewhere "
                         "(a bundle holds only the files its manifest lists)")
