"""The bundle's ``manifest.json``: what the device runner needs to know, and file hashes.

Shared by the exporter (which writes it) and the device runtime (which reads and checks
it); it imports neither torch nor onnx. Opening a bundle checks, in this order: the
manifest file itself (a regular file of at most ``MAX_MANIFEST_BYTES``), its JSON, format
and version, the schema and cross-field rules (``manifest_schema``), then the directory
(only the listed files, all regular: ``bundle_files.check_entries``). Each file is then
size- and hash-checked when it is read (:func:`read_verified`). See docs/BUNDLE.md.
"""

import hashlib
import json
from pathlib import Path

from swarmedge.errors import BundleError

MANIFEST = "manifest.json"
FORMAT = "swarmedge.bundle"
FORMAT_VERSION = 1
PRECISION_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
# Far above any real manifest (a few KB: labels, config, figures); read no further.
MAX_MANIFEST_BYTES = 1 << 20
# A real manifest nests 4 levels (parity.cases[i].max_abs_diff); deeper values would only
# make validators recurse (fastjsonschema's uniqueItems does, into a RecursionError).
MAX_MANIFEST_DEPTH = 32


def sha256_file(path: Path) -> str:
    """The sha256 (hex) of the file at ``path``, read in 1 MiB blocks (the exporter's side)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(bundle: Path) -> dict:
    """Load ``bundle/manifest.json`` and check it and the bundle directory; return the manifest.

    Raises BundleError (one line naming the problem and the fix) for a missing bundle, a
    manifest that is not a regular file or over 1 MiB, bad JSON (NaN/Infinity, repeated keys,
    integers over 4,300 digits and floats beyond float range included), another format or
    version, any schema or cross-field violation, and an
    entry in the bundle that is not a regular file listed in ``files``.
    """
    from swarmedge.atomic import recover_directory
    from swarmedge.bundle_files import check_entries, read_capped

    bundle = Path(bundle)
    if not bundle.exists():  # an export killed mid-swap may have set it aside: put it back first
        recover_directory(bundle)
    if not bundle.exists():
        raise BundleError(f"bundle not found: {bundle} (create one with: swarmedge export MODEL.pt -o {bundle})")
    if not bundle.is_dir():
        raise BundleError(f"{bundle} is a file, not a bundle directory (create one with: swarmedge export)")
    path = bundle / MANIFEST
    if not path.exists() and not path.is_symlink():
        if any((bundle / name).is_file() for name in ("model.pt", "model.safetensors")):  # a model folder
            raise BundleError(f"{bundle} is a model folder, not a bundle: export it first "
                              f"(swarmedge export {bundle}) and use the bundle it writes")
        raise BundleError(f"{bundle} has no {MANIFEST}: not a swarmedge bundle, or an incomplete copy; export it again")
    manifest = _parse(read_capped(path, MAX_MANIFEST_BYTES, MANIFEST), path)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{path} is not a swarmedge bundle manifest; export the bundle again")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise BundleError(
            f"{path} has bundle format {_short(version)}, this swarmedge reads {FORMAT_VERSION}; "
            "re-export it or install the matching swarmedge"
        )
    check_manifest(manifest, path)
    check_entries(bundle, {n: e["bytes"] for n, e in manifest["files"].items()}, MANIFEST)
    return manifest


def check_manifest(manifest, where) -> None:
    """Raise BundleError unless ``manifest`` (parsed JSON) satisfies the bundle schema and the
    cross-field rules; ``where`` (a path or name) starts the one-line message."""
    from swarmedge.manifest_schema import problem

    issue = problem(manifest)
    if issue:
        raise BundleError(f"{where}: {issue}; export the bundle again")


def written_problem(manifest: dict) -> str | None:
    """Why :func:`read_manifest` would refuse ``manifest`` once written with :func:`dumps`, as one
    line, or None: the exporter's check that every bundle it writes opens."""
    from swarmedge.manifest_schema import problem

    try:
        text = dumps(manifest)
        parsed = _parse(text.encode("utf-8"), Path(MANIFEST))
    except (BundleError, ValueError) as exc:  # NaN or infinity from a diverged model, for one
        return str(exc)
    if len(text.encode("utf-8")) > MAX_MANIFEST_BYTES:
        return f"{MANIFEST} would be over {MAX_MANIFEST_BYTES} bytes"
    return problem(parsed)


def _parse(data: bytes, path: Path):
    from swarmedge.manifest_schema import NumberRefused, parse_float, parse_int

    class Refused(ValueError):  # a reason of ours, already short and one line
        pass

    def no_constant(name):  # NaN and Infinity are not JSON, and compare false with every bound
        raise Refused(f"{name} is not a JSON number")

    def no_repeats(pairs):  # a repeated key means two readers may see two different manifests
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            raise Refused(f"key {_short(next(k for k in keys if keys.count(k) > 1))!r} appears twice")
        return dict(pairs)

    if data.startswith(b"\xef\xbb\xbf"):  # the exporter never writes one; editors on Windows may
        raise BundleError(f"{path} starts with a byte-order mark; save it as UTF-8 without BOM, "
                          "or export the bundle again")
    try:
        value = json.loads(data.decode("utf-8"), parse_float=parse_float, parse_int=parse_int,
                           parse_constant=no_constant, object_pairs_hook=no_repeats)
        if _depth(value) > MAX_MANIFEST_DEPTH:
            raise RecursionError
        return value
    except UnicodeDecodeError:
        raise BundleError(f"{path} is not UTF-8 text; export the bundle again") from None
    except RecursionError:
        raise BundleError(f"{path} nests more than {MAX_MANIFEST_DEPTH} levels deep: not a manifest; "
                          "export the bundle again") from None
    except NumberRefused as exc:
        raise BundleError(f"{path} holds {exc}; export the bundle again") from None
    except json.JSONDecodeError as exc:  # its str() nests "(char N)": rebuild it without
        where = f"line {exc.lineno}, column {exc.colno}"
        raise BundleError(f"{path} is corrupt ({exc.msg.removesuffix(' at')} at {where}); "
                          "export the bundle again") from None
    except Refused as exc:
        raise BundleError(f"{path} is corrupt ({exc}); export the bundle again") from None
    except ValueError as exc:  # none known; whatever it says, no parenthesis of ours to leave open
        raise BundleError(f"{path} is corrupt: {_short(str(exc), 120)}; export the bundle again") from None


def _depth(value) -> int:
    """How deeply ``value`` nests lists and objects (a scalar: 0), without recursing."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, (list, dict)):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def _short(value, limit: int = 40) -> str:
    text = repr(value) if not isinstance(value, str) else value
    text = text.replace("\n", " ").replace("\r", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_verified(bundle: Path, manifest: dict, name: str) -> bytes:
    """The bytes of bundle file ``name``, checked against its ``bytes`` and ``sha256`` in the manifest.

    Reads at most one byte more than the manifest's size, never through a symlink; the
    bytes returned are the ones that were hashed. Raises BundleError when ``name`` is not
    listed, or the file is missing, not a regular file, or of another size or hash.
    """
    from swarmedge.bundle_files import read_verified as read_file

    entry = manifest["files"].get(name)
    if entry is None:
        raise BundleError(f"{name} is not part of bundle {bundle}; export the bundle again")
    return read_file(Path(bundle) / name, entry["bytes"], entry["sha256"], MANIFEST)


def verify_file(bundle: Path, manifest: dict, name: str) -> Path:
    """Check bundle file ``name`` as :func:`read_verified` does; return its path (for its size or
    name: load the verified bytes, not the path, or the file could change in between)."""
    read_verified(bundle, manifest, name)
    return Path(bundle) / name


def dumps(manifest: dict) -> str:
    """The manifest as written to ``manifest.json``: indented JSON, one trailing newline."""
    return json.dumps(manifest, indent=2, sort_keys=False, allow_nan=False) + "\n"
