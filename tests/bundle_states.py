"""What the bundle-replacement tests share: a bundle's state, and exports without torch."""

import os
import shutil
from pathlib import Path

from swarmedge.atomic import staged_directory
from swarmedge.manifest import MANIFEST, sha256_file


def snapshot(folder: Path) -> dict[str, str]:
    """File name -> sha256 of every file in FOLDER."""
    return {p.name: sha256_file(p) for p in sorted(folder.iterdir())}


def is_complete_bundle(folder: Path) -> bool:
    """Every file the manifest lists is there with its sha256, nothing else, and the runner opens it."""
    from swarmedge.runtimes.bundle import Bundle

    try:
        bundle = Bundle.open(folder)
        for precision in bundle.precisions:
            bundle.model_path(precision)
    except Exception:
        return False
    files = bundle.manifest["files"]
    on_disk = {p.name for p in folder.iterdir()}
    return on_disk == set(files) | {MANIFEST} and all(sha256_file(folder / n) == e["sha256"] for n, e in files.items())


def hidden(parent: Path) -> list[str]:
    """The hidden entries (staging folders, locks, bundles set aside) in PARENT."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def export_copy(source: Path, target: Path) -> None:
    """An export as the pipeline does it, minus torch: stage SOURCE's files, swap them in."""
    with staged_directory(target) as stage:
        for f in source.iterdir():
            shutil.copyfile(f, stage / f.name)


def set_aside_by_dead_fallback(target: Path, token="0123456789ab") -> None:
    """What a fallback swap killed between its two renames leaves: bundle aside, staging, lock."""
    os.rename(target, target.parent / f".{target.name}.old-{token}")
    shutil.copytree(target.parent / f".{target.name}.old-{token}", target.parent / f".{target.name}.staging-{token}")
    (target.parent / f".{target.name}.lock-{token}").touch()
