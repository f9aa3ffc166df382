"""The runtimes a user would pick instead of swarmedge, each in a venv of its own.

optimum-onnx only quantizes (its models run in our onnxruntime, see variants.py); OpenVINO
and ExecuTorch run in their own processes (worker.py), driven through remote.py.
"""

import os
from pathlib import Path

from benchmarks.subjects import ROOT, Subject

HERE = Path(__file__).parent
# name -> (env var naming its python, default venv, adapter run by the worker). The adapter can
# be swapped too (SWARMEDGE_<NAME>_ADAPTER), which the tests do to drive the chain with a fake.
PEERS = {
    "openvino": ("SWARMEDGE_OPENVINO_PYTHON", ".venv-openvino", HERE / "openvino_peer.py"),
    "executorch": ("SWARMEDGE_EXECUTORCH_PYTHON", ".venv-executorch", HERE / "executorch_peer.py"),
}
CALIBRATION_INPUTS = 320  # training inputs for the peers' static int8 (10 batches of 32)


def peer_python(name: str) -> str | None:
    env, venv, _ = PEERS[name]
    path = os.environ.get(env, str(ROOT / venv / "bin" / "python"))
    return path if Path(path).is_file() else None


def peer_variants(subject: Subject, workdir: Path, log=print) -> list:
    """OpenVINO's and ExecuTorch's variants of ``subject``, built in their venvs (cached).
    A variant that fails to build is kept, with what broke, and never timed."""
    from benchmarks.peers.remote import Peer, RemoteRunner, build_all
    from benchmarks.variants import Variant
    from swarmedge.runtimes.bundle import Bundle

    out = []
    sources, calibration = None, None
    for name, (_, venv, adapter) in PEERS.items():
        adapter = Path(os.environ.get(f"SWARMEDGE_{name.upper()}_ADAPTER", adapter))
        python = peer_python(name)
        if python is None or not adapter.is_file():
            log(f"  {name} not installed ({venv}: make peers): its rows are left out")
            continue
        if sources is None:
            sources = {"model_type": subject.model_type,
                       "onnx": str(Bundle.open(subject.plain).model_path("fp32")),
                       "program": str(_program(subject, workdir))}
            calibration = calibration_feeds(subject)
        peer = Peer(name, python, adapter, workdir / subject.name / f"{name}.log")
        profiles = peer.ask("variants")["operators"]  # per-node counters are optional
        for variant, built in build_all(peer, sources, calibration, workdir / subject.name, log).items():
            if "error" in built:
                failed = f"failed to build: {built['error']}"
                out.append(Variant(variant, name, 0, None, built["note"], failed=failed))
                continue

            def make(threads: int, peer=peer, variant=variant, artifact=built["artifact"]):
                return RemoteRunner(peer, variant, artifact, threads)
            v = Variant(variant, name, built["bytes"], make, built["note"])
            v.operators = _operators(peer, variant, built["artifact"]) if profiles else None
            out.append(v)
    return out


def _operators(peer, variant: str, artifact: str):
    def profile(feeds: dict, repeat: int) -> list[dict]:
        return peer.ask("operators", variant=variant, artifact=artifact, feeds=peer.feeds_path(feeds),
                        repeat=repeat)["operators"]
    return profile


def _program(subject: Subject, workdir: Path) -> Path:
    """The eager model as a torch.export program (ExecuTorch starts from it)."""
    from benchmarks.peers.program import export_program

    out = workdir / subject.name / f"program-{subject.key}.pt2"
    if not out.is_file():
        export_program(subject.checkpoint, out)
    return out


def calibration_feeds(subject: Subject) -> list[dict]:
    """Model feeds of CALIBRATION_INPUTS seeded training inputs (never test inputs), through
    the device preprocessing, in batches of 32 (or synthetic ones for an untrained model's
    data set when the data is not at hand)."""
    import numpy as np

    from swarmedge.datasets import load_dataset
    from swarmedge.runtimes.bundle import Bundle
    from swarmedge.runtimes.feeds import Samples, feeds_for

    bundle = Bundle.open(subject.plain)
    pre, labels = bundle.manifest["preprocessing"], bundle.manifest["labels"]
    tokenizer = bundle.read_text(pre["tokenizer"]) if "tokenizer" in pre else None
    digits = [int(x) for x in labels] if subject.data == "mnist" else None
    ds = load_dataset(subject.data, "train", digits=digits)
    pick = np.sort(np.random.default_rng(0).choice(len(ds), CALIBRATION_INPUTS, replace=False))
    ds = ds.subset(pick)
    return feeds_for(Samples(ds.inputs, ds.source), pre, tokenizer, batch_size=32)
