"""What the bundle-refusal tests share: copies to damage, manifest edits, the one-line check."""

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from swarmedge.errors import BundleError
from swarmedge.runtimes import Bundle

SECTION = "bundle refusals (test_bundle*.py)"


def copy_bundle(bundle: Path, tmp_path: Path, name: str = "b.bundle") -> Path:
    """A copy of BUNDLE in TMP_PATH to damage."""
    dest = tmp_path / name
    shutil.copytree(bundle, dest)
    return dest


def manifest_of(bundle: Path) -> dict:
    """The bundle's manifest.json, parsed."""
    return json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))


def write_manifest(bundle: Path, manifest) -> None:
    """Replace the manifest as a hand edit would (sizes and hashes of the files left as they are)."""
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def relist(bundle: Path, manifest: dict, name: str) -> None:
    """Record ``name``'s real size and hash, as someone who swaps a file and updates the manifest would."""
    data = (bundle / name).read_bytes()
    manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def refused(reliability, open_it, *needles: str) -> str:
    """Assert ``open_it()`` raises one BundleError line holding every needle; return the message."""
    with pytest.raises(BundleError) as info:
        open_it()
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message, message
    for needle in needles:
        assert needle in message, message
    reliability[SECTION]["refused in one line"] += 1
    return message


def opener(bundle: Path, precision: str = "fp32"):
    """What a device does first: open the bundle and its ONNX session."""
    return lambda: Bundle.open(bundle).session(precision)
