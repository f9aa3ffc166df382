"""What ``python -m benchmarks.stream`` measures on: the SwarmFormer Small int8 bundle (cached
beside ``make bench``'s exports), corpora of short IMDB sentences, and the machine and versions.
"""

import gzip
import hashlib
import itertools
import json
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

from benchmarks.subjects import ROOT, SUBJECTS, ZOO, preset_graphs

SUBJECT = "swarmformer-small"  # the model the streaming bench runs
MIN_WORDS, MAX_WORDS = 4, 20  # a "short text": a sentence of a review


def stream_bundle(workdir: Path, log=print) -> Path:
    """The zoo's SwarmFormer Small, int8 for this CPU: the bundle `make bench` calls
    "swarmedge int8" for the host, at the path and under the cache key benchmarks.subjects uses
    (exported here, atomically, when that cache does not hold it)."""
    from swarmedge.export.targets import detect

    subject = SUBJECTS[SUBJECT]
    checkpoint = ZOO / subject.zoo / "model.pt"
    if not checkpoint.is_file():
        raise SystemExit(f"error: {checkpoint} is missing: this benchmark measures the trained zoo model")
    code = b"".join(p.read_bytes() for p in sorted((ROOT / "export").glob("*.py")))
    key = hashlib.sha256(checkpoint.read_bytes() + code).hexdigest()[:12]
    host = detect()
    preset = next((presets[0] for presets in preset_graphs().values() if host in presets), host)
    out = workdir / subject.name / f"int8-{preset}-{key}.bundle"
    if not out.is_dir():
        from swarmedge.export.pipeline import export_bundle

        log(f"exporting {SUBJECT} int8 for {preset} -> {out}")
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        try:
            export_bundle(checkpoint, tmp, target=preset)
            tmp.rename(out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def describe_bundle(bundle: Path, zoo: bool) -> dict:
    from swarmedge.runtimes.bundle import Bundle

    manifest = Bundle.open(bundle).manifest
    size = sum(p.stat().st_size for p in Path(bundle).rglob("*") if p.is_file())
    quantization = manifest.get("quantization") or {}
    return {"path": str(bundle), "name": Path(bundle).name, "bytes": size, "model_type": manifest.get("model_type"),
            "int8_target": (quantization.get("target") or {}).get("name"), "zoo": zoo}


def cut_sentences(path: Path) -> list[str]:
    """The distinct sentences of 4-20 words of the reviews in ``path``, in reading order."""
    seen: dict[str, None] = {}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            text = json.loads(line)["text"].replace("<br />", " ").replace("<br/>", " ")
            for sentence in re.split(r"(?<=[.!?])\s+", text):
                words = sentence.split()
                if MIN_WORDS <= len(words) <= MAX_WORDS:
                    seen.setdefault(" ".join(words), None)
    if not seen:
        raise SystemExit(f"error: {path} holds no sentence of {MIN_WORDS}-{MAX_WORDS} words")
    return list(seen)


def write_corpus(path: Path, n: int, sentences: list[str]) -> dict:
    """``n`` texts, one per line, the sentences cycled: what a --file run reads."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        texts = itertools.islice(itertools.cycle(sentences), n)
        while block := list(itertools.islice(texts, 10_000)):
            f.write("\n".join(block) + "\n")
    tmp.replace(path)
    words = sum(len(s.split()) for s in sentences[: min(n, len(sentences))])
    return {"path": str(path), "texts": n, "bytes": path.stat().st_size,
            "distinct": min(n, len(sentences)), "times_each_repeats": round(n / len(sentences), 2),
            "mean_words": round(words / min(n, len(sentences)), 2)}


# -- running the command line ----------------------------------------------------------------

def machine() -> dict:
    from swarmedge.runtimes.profile import machine as device

    mem_kb = 0
    try:
        mem_kb = int(re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text()).group(1))
    except (OSError, AttributeError):
        pass
    return {**device(), "memory_gb": mem_kb / 2**20, "load_before": list(os.getloadavg())}


def versions(ray: bool) -> dict:
    import numpy
    import onnxruntime

    out = {"python": platform.python_version(), "onnxruntime": onnxruntime.__version__, "numpy": numpy.__version__}
    try:
        import tokenizers

        out["tokenizers"] = tokenizers.__version__
    except ImportError:
        pass
    if ray:
        try:
            import ray as ray_module

            out["ray"] = ray_module.__version__
        except ImportError:
            raise SystemExit("error: ray is not installed: pip install 'swarmedge[ray]', or pass --no-ray") from None
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        out["swarmedge_commit"] = commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        pass
    return out
