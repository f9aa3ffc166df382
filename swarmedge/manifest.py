"""The bundle's ``manifest.json``: what the device runner needs to know, and file hashes.

Shared by the exporter (which writes it) and the device runtime (which reads and checks
it); it imports neither torch nor onnx.
"""

import hashlib
import json
from pathlib import Path

from swarmedge.errors import BundleError

MANIFEST = "manifest.json"
FORMAT = "swarmedge.bundle"
FORMAT_VERSION = 1
PRECISION_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(bundle: Path) -> dict:
    """Load and sanity-check ``bundle/manifest.json``; raise BundleError naming the problem."""
    bundle = Path(bundle)
    if not bundle.exists():
        raise BundleError(f"bundle not found: {bundle} (create one with: swarmedge export MODEL.pt -o {bundle})")
    if not bundle.is_dir():
        raise BundleError(f"{bundle} is a file, not a bundle directory (create one with: swarmedge export)")
    path = bundle / MANIFEST
    if not path.is_file():
        raise BundleError(f"{bundle} has no {MANIFEST}: not a swarmedge bundle, or an incomplete copy; export it again")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path} is corrupt ({exc}); export the bundle again") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{path} is not a swarmedge bundle manifest; export the bundle again")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(
            f"{path} has bundle format {version}, this swarmedge reads {FORMAT_VERSION}; "
            "re-export it or install the matching swarmedge"
        )
    for key in ("model_type", "labels", "inputs", "outputs", "preprocessing", "files"):
        if key not in manifest:
            raise BundleError(f"{path} lacks '{key}'; export the bundle again")
    return manifest


def verify_file(bundle: Path, manifest: dict, name: str) -> Path:
    """Check that ``name`` is listed in the manifest and its sha256 matches; return its path."""
    entry = manifest["files"].get(name)
    if entry is None:
        raise BundleError(f"{name} is not part of bundle {bundle}")
    path = Path(bundle) / name
    if not path.is_file():
        raise BundleError(f"{path} is missing: the bundle is incomplete; copy or export it again")
    if sha256_file(path) != entry["sha256"]:
        raise BundleError(
            f"{path} does not match the sha256 in {MANIFEST} (corrupted or modified); copy or export it again"
        )
    return path


def dumps(manifest: dict) -> str:
    return json.dumps(manifest, indent=2, sort_keys=False) + "\n"
