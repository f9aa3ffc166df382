"""The models benchmarked, and the ONNX files every variant is built from.

Trained zoo models where they exist (then accuracy is measured on the full test set),
otherwise freshly initialised ones (timings only: an untrained model's accuracy says nothing).
"""

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from swarmedge.export.targets import PRESETS

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "zoo"


@dataclass
class Subject:
    name: str
    model_type: str
    preset: str  # init config: swarmformer small|base, boids binary
    data: str  # test set for accuracy
    zoo: str | None = None  # zoo folder holding a trained model.pt
    checkpoint: Path | None = None
    trained: bool = False
    key: str = ""  # sha256 prefix of the checkpoint and the export code: names the cached exports
    plain: Path | None = None  # bundle exported without rewrites (what a user of torch.onnx gets)
    bundles: dict = field(default_factory=dict)  # swarmedge int8 bundle per distinct preset graph


SUBJECTS = {
    "swarmformer-small": Subject("swarmformer-small", "swarmformer", "small", "imdb", zoo="swarmformer-small"),
    "swarmformer-base": Subject("swarmformer-base", "swarmformer", "base", "imdb", zoo="swarmformer-base"),
    "boids-5v6": Subject("boids-5v6", "boids", "binary", "mnist", zoo="boids-5v6"),
}


def prepare(subject: Subject, workdir: Path, log=print) -> Subject:
    """Find or initialise the checkpoint; export the plain and the swarmedge bundles (cached)."""
    from swarmedge.checkpoint import init_checkpoint, save_checkpoint
    from swarmedge.export.pipeline import export_bundle
    from swarmedge.models.boids import PRESETS as BOID_PRESETS
    from swarmedge.models.swarmformer import PRESETS as SF_PRESETS

    work = workdir / subject.name
    work.mkdir(parents=True, exist_ok=True)
    trained = ZOO / subject.zoo / "model.pt" if subject.zoo else None
    if trained and trained.is_file():
        subject.checkpoint, subject.trained = trained, True
    else:
        subject.checkpoint = work / "init.pt"
        if not subject.checkpoint.is_file():
            config = (SF_PRESETS if subject.model_type == "swarmformer" else BOID_PRESETS)[subject.preset].to_dict()
            save_checkpoint(init_checkpoint(subject.model_type, config, seed=0), subject.checkpoint)
    # Cached exports are valid for this checkpoint and this export code only.
    code = b"".join(p.read_bytes() for p in sorted((ROOT / "export").glob("*.py")))
    subject.key = hashlib.sha256(subject.checkpoint.read_bytes() + code).hexdigest()[:12]

    def bundle(name: str, **kwargs) -> Path:
        out = work / f"{name}-{subject.key}.bundle"
        if not out.is_dir():
            log(f"  exporting {subject.name}: {name}")
            export_bundle(subject.checkpoint, out, **kwargs)
        return out

    subject.plain = bundle("plain", quantize_mode=None, rewrites=())
    for graph, presets in preset_graphs().items():
        subject.bundles[graph] = (bundle(f"int8-{presets[0]}", target=presets[0]), presets)
    return subject


def preset_graphs() -> dict[str, list[str]]:
    """Target presets grouped by the quantization they request: one int8 graph per group."""
    groups: dict[str, list[str]] = {}
    for name, p in PRESETS.items():
        key = json.dumps([p.activation_type, p.weight_type, p.per_channel, p.reduce_range])
        groups.setdefault(key, []).append(name)
    return {"/".join(v): v for v in groups.values()}


def peers_python() -> str | None:
    path = os.environ.get("SWARMEDGE_PEERS_PYTHON", str(ROOT / ".venv-peers" / "bin" / "python"))
    return path if Path(path).is_file() else None
