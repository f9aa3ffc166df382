"""Damage to a bundle for tests/test_bundle_properties.py: what hypothesis draws, how it is
applied to a copy, and what each kind of damage may lead to."""

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st

from . import json_mutations as jm

MODELS = {"fp32": "model.onnx", "int8": "model.int8.onnx"}

# What a mutation may lead to.
SAME = "answer as the intact bundle"
REFUSE = "refuse"
REFUSE_OR_SAME = "refuse, or answer as the intact bundle"
SETTING = "refuse, or answer (a manifest setting changed)"

BAD_NAMES = ["../x", "/absolute", "sub/dir", "C:\\x", "a\x00b", ".", "..", "", ".hidden", "manifest.json",
             "x" * 300, "tab\tname", "new\nline"]
REPLACEMENTS = ["symlink-outside", "symlink-inside", "symlink-passwd", "symlink-dangling", "symlink-loop", "folder",
                "fifo", "hardlink-outside"]


@dataclass
class Pristine:
    """An intact bundle, its manifest and its answers to the test input, per precision."""

    kind: str
    path: Path
    manifest: dict
    cli_input: list[str]
    api: dict = field(default_factory=dict)  # precision -> scores (list of float)
    cli: dict = field(default_factory=dict)
    other: Path | None = None  # the other kind's bundle, for swapped-in ONNX

    @property
    def reads_always(self) -> set[str]:
        pre = self.manifest["preprocessing"]
        return {"manifest.json"} | ({pre["tokenizer"]} if pre["kind"] == "text" else set())


# -- mutations: drawn as plain tuples, applied to a copy ------------------------------------------------------------

def _focus(manifest: dict) -> list[tuple]:
    """Manifest places the runner depends on, drawn as often as all the others."""
    pre = manifest["preprocessing"]
    out = [(), ("format",), ("format_version",), ("model_type",), ("labels",), ("labels", 0), ("config",),
           ("preprocessing",), ("inputs",), ("inputs", 0), ("inputs", 0, "name"), ("inputs", 0, "dtype"),
           ("inputs", 0, "shape"), ("outputs", 0, "name"), ("outputs", 0, "shape"), ("files",),
           ("int8_vs_fp32",), ("int8_vs_fp32", "ok")]
    out += [("preprocessing", k) for k in pre] + [("config", k) for k in manifest["config"]]
    for name in manifest["files"]:
        out += [("files", name), ("files", name, "sha256"), ("files", name, "bytes")]
    return out


def mutations(p: Pristine) -> st.SearchStrategy:
    files = sorted(p.manifest["files"])
    everything = files + ["manifest.json"]
    return st.one_of(
        st.tuples(st.just("manifest"), jm.mutations(p.manifest, tuple(_focus(p.manifest)))),
        st.tuples(st.just("manifest-bytes"), jm.raw_damage),
        st.tuples(st.just("file-bytes"), st.sampled_from(files), jm.raw_damage),
        st.tuples(st.just("delete"), st.sampled_from(everything)),
        st.tuples(st.just("sparse"), st.sampled_from(everything), st.sampled_from([1 << 31, 1 << 34])),
        st.tuples(st.just("swap"), st.lists(st.sampled_from(everything), min_size=2, max_size=2, unique=True)),
        st.tuples(st.just("replace-by"), st.sampled_from(everything), st.sampled_from(REPLACEMENTS)),
        st.tuples(st.just("extra"), st.sampled_from(["notes.txt", ".DS_Store", "model.onnx.bak", "sub"]),
                  st.sampled_from(["file", "folder", "symlink", "fifo"])),
        st.tuples(st.just("bad-name"), st.sampled_from(files), st.sampled_from(BAD_NAMES)),
        st.tuples(st.just("other-model"), st.sampled_from([("fp32",), ("int8",), ("fp32", "int8")])),
        st.tuples(st.just("bundle-symlink")),
    )


def _write_manifest(bundle: Path, manifest: dict) -> None:
    (bundle / "manifest.json").write_bytes(jm.dumps(manifest))


def _replace_by(bundle: Path, name: str, how: str, outside: Path) -> None:
    target = bundle / name
    saved = outside / f"copy-of-{name}"
    shutil.copyfile(target, saved)
    target.unlink()
    if how == "symlink-outside":  # same bytes: the hash would pass
        target.symlink_to(saved)
    elif how == "symlink-inside":
        shutil.copyfile(saved, bundle / f"real-{name}")
        target.symlink_to(f"real-{name}")
    elif how == "symlink-passwd":
        target.symlink_to("/etc/passwd")
    elif how == "symlink-dangling":
        target.symlink_to(outside / "nothing-here")
    elif how == "symlink-loop":
        target.symlink_to(name)
    elif how == "folder":
        target.mkdir()
        shutil.copyfile(saved, target / name)
    elif how == "fifo":
        os.mkfifo(target)
    elif how == "hardlink-outside":  # a plain file with two names: indistinguishable from a copy
        os.link(saved, target)
    else:
        raise ValueError(how)


def apply(p: Pristine, mutation: tuple, bundle: Path, outside: Path) -> tuple[Path, set[str], str | None]:
    """Change the copy ``bundle``; returns the path to run, the files whose bytes or kind
    changed (for :func:`expectation`) and, where the mutation alone decides it, the expectation."""
    kind = mutation[0]
    manifest = json.loads((bundle / "manifest.json").read_text())
    if kind == "manifest":
        _write_manifest(bundle, jm.apply(manifest, mutation[1]))
        return bundle, set(), None
    if kind == "manifest-bytes":
        (bundle / "manifest.json").write_bytes(jm.damage_bytes((bundle / "manifest.json").read_bytes(), mutation[1]))
        return bundle, set(), SETTING
    if kind == "file-bytes":
        name = mutation[1]
        (bundle / name).write_bytes(jm.damage_bytes((bundle / name).read_bytes(), mutation[2]))
        return bundle, {name}, None
    if kind == "delete":
        (bundle / mutation[1]).unlink()
        return bundle, {mutation[1]}, None
    if kind == "sparse":  # gigabytes that cost no disk: hashing them all would take minutes
        with open(bundle / mutation[1], "r+b") as f:
            f.truncate(mutation[2])
        return bundle, {mutation[1]}, None
    if kind == "swap":
        a, b = (bundle / n for n in mutation[1])
        data_a, data_b = a.read_bytes(), b.read_bytes()
        a.write_bytes(data_b)
        b.write_bytes(data_a)
        return bundle, set(mutation[1]), None
    if kind == "replace-by":
        _replace_by(bundle, mutation[1], mutation[2], outside)
        return bundle, {mutation[1]}, REFUSE_OR_SAME if mutation[2] == "hardlink-outside" else REFUSE
    if kind == "extra":
        name, what = mutation[1], mutation[2]
        if what == "file":
            (bundle / name).write_bytes(b"not listed in the manifest\n")
        elif what == "folder":
            (bundle / name).mkdir()
        elif what == "symlink":
            (bundle / name).symlink_to("manifest.json")
        else:
            os.mkfifo(bundle / name)
        return bundle, set(), REFUSE
    if kind == "bad-name":
        name, bad = mutation[1], mutation[2]
        data = (bundle / name).read_bytes()
        (bundle / name).unlink()  # the file now exists only under its bad name, where it can
        if bad == "/absolute":
            bad = str(outside / name)
            Path(bad).write_bytes(data)
        elif bad.startswith("../"):
            (bundle.parent / bad[3:]).write_bytes(data)
        elif bad == "sub/dir":
            (bundle / "sub").mkdir()
            (bundle / "sub" / "dir").write_bytes(data)
        elif bad and "\x00" not in bad and bad not in (".", "..", "manifest.json") and len(bad) < 256:
            (bundle / bad).write_bytes(data)  # C:\x, .hidden, a tab or newline: legal names on Linux
        manifest["files"] = {bad if k == name else k: v for k, v in manifest["files"].items()}
        pre = manifest["preprocessing"]
        if pre.get("tokenizer") == name:
            pre["tokenizer"] = bad
        _write_manifest(bundle, manifest)
        return bundle, {name}, REFUSE
    if kind == "other-model":
        import hashlib

        names = [MODELS[q] for q in mutation[1]]
        for n in names:
            data = (p.other / n).read_bytes()
            (bundle / n).write_bytes(data)
            manifest["files"][n] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        _write_manifest(bundle, manifest)  # the hashes pass: only the graph's inputs tell
        return bundle, set(names), None
    if kind == "bundle-symlink":  # a user's link to a bundle folder is an ordinary thing
        link = outside / "linked.bundle"
        link.symlink_to(bundle)
        return link, set(), SAME
    raise ValueError(kind)


def expectation(mutation: tuple, fixed: str | None, changed: set[str], reads: set[str], p: Pristine) -> str:
    if fixed is not None:
        return fixed
    kind = mutation[0]
    if kind == "manifest":
        m = mutation[1]
        if m[0] == "reorder":
            return SAME
        if m[0] == "replace" and m[1]:
            old, new = jm.get(p.manifest, m[1]), m[2]
            # a plausible number where a number was: a setting (threshold, seq_len) nothing can tell from real
            if jm.json_type(old) == jm.json_type(new) == "number" and 0 <= new <= 1e6:
                return SETTING
        return REFUSE if m[0] == "replace" and not m[1] else REFUSE_OR_SAME
    # files: what the run reads must be refused when changed, and so must any listed file whose size
    # changed (sizes are checked at open); a same-size change to a file the run does not read may stay
    # unnoticed (hashes are checked per file read), and the answer from the intact files is then correct
    return REFUSE if changed & reads else REFUSE_OR_SAME


FILE_DAMAGE = ("file-bytes", "delete", "sparse", "swap", "replace-by")


def resized(bundle: Path, p: Pristine) -> set[str]:
    """Listed files that are missing, or whose size (lstat) differs from the intact manifest's."""
    out = set()
    for name, entry in p.manifest["files"].items():
        try:
            if os.lstat(bundle / name).st_size != entry["bytes"]:
                out.add(name)
        except OSError:
            out.add(name)
    return out
