"""The main job on an embedded default: checkpoint -> int8 bundle -> predictions, offline.

Takes the trained models under ``zoo/`` when they exist, else freshly initialised ones
(whose predictions are then meaningless: the demo says so).
"""

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

ZOO = Path(__file__).resolve().parents[1] / "zoo"
TEXTS = [
    "One of the best films I have seen in years: moving, funny and beautifully acted.",
    "A dull, predictable plot and wooden acting. I wanted my two hours back.",
    "Not great, not terrible; the soundtrack was the best part.",
]


def demo_digits(n: int = 4, rng: np.random.Generator | None = None) -> tuple[np.ndarray, list[str], str]:
    """Fives and sixes from the MNIST test set if $SWARMEDGE_DATA has it, else rendered ones."""
    rng = rng or np.random.default_rng(0)
    root = os.environ.get("SWARMEDGE_DATA")
    if root and (Path(root) / "mnist.npz").is_file():
        with np.load(Path(root) / "mnist.npz") as z:
            x, y = z["x_test"], z["y_test"]
        idx = np.concatenate([np.flatnonzero(y == 5)[: n // 2], np.flatnonzero(y == 6)[: n - n // 2]])
        return x[idx] / 255.0, [f"MNIST test #{i} (a {y[i]})" for i in idx], "MNIST test set"
    from swarmedge.export.samples import render_digits

    digits = [5, 6] * (n // 2) + [5] * (n % 2)
    return render_digits(digits, rng), [f"rendered {d}" for d in digits], "digits rendered offline"


def run_demo(workdir: Path, echo: Callable[[str], None]) -> dict:
    """Export both model families to int8 bundles in ``workdir`` and classify a few inputs."""
    from swarmedge.checkpoint import init_checkpoint, save_checkpoint
    from swarmedge.errors import InputError
    from swarmedge.export import export_bundle
    from swarmedge.runtimes import Classifier
    from swarmedge.summary import bundle_summary

    workdir = Path(workdir)
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way, a read-only place
        raise InputError(f"--workdir {workdir}: cannot make that folder ({exc.strerror}); "
                         "give a folder you may write to") from None
    results = {}
    for name, model_type in (("swarmformer-small", "swarmformer"), ("boids-5v6", "boids")):
        zoo_ckpt = ZOO / name / "model.pt"
        if zoo_ckpt.is_file():
            ckpt_path, trained = zoo_ckpt, True
        else:
            ckpt_path, trained = workdir / f"{name}.pt", False
            save_checkpoint(init_checkpoint(model_type, {}, seed=0), ckpt_path)
        echo(f"== {name}: {'trained model from zoo/' if trained else 'untrained (randomly initialised) model'}")
        bundle, manifest = export_bundle(ckpt_path, workdir / f"{name}.bundle")
        echo(bundle_summary(bundle, manifest))
        clf = Classifier(bundle)
        if model_type == "swarmformer":
            inputs, preds = TEXTS, clf.classify_texts(TEXTS)
        else:
            images, inputs, source = demo_digits()
            preds = clf.classify_images(images)
            echo(f"digits: {source}")
            if source != "MNIST test set":  # typeset, not handwritten: the model may well misread them
                echo("  (typeset digits, not the handwriting the model learnt: it reads printed 6s as 5; "
                     "set SWARMEDGE_DATA to a folder with MNIST for test digits, as `make demo` does)")
        echo(f"predictions (onnxruntime {clf.computation}, no torch in the loop):")
        for text, p in zip(inputs, preds):
            echo(f"  {p.label:>8}  {p.probability:.2f}  {_shortened(text)}")
        if not trained:
            echo("  (untrained weights: these labels are chance; train a model or use the zoo)")
        results[name] = {"bundle": str(bundle), "predictions": [p.to_dict() for p in preds]}
        echo("")
    text_bundle, digit_bundle = (results[n]["bundle"] for n in ("swarmformer-small", "boids-5v6"))
    echo("next, with your own inputs:")
    echo(f'  swarmedge run {text_bundle} --text "Your own review here."')
    echo(f"  swarmedge run {digit_bundle} --image your-digit.png     # a 5 or a 6: photo, scan or drawing")
    echo(f"  swarmedge profile {text_bundle} --threads 1,2 --per-op   # latency, throughput, slowest operators")
    echo("  swarmedge --help                                  # every command, each with examples")
    return results


def _shortened(text: str, width: int = 70) -> str:
    """``text`` on one line of at most ``width`` characters, cut at a word boundary with an ellipsis."""
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    cut = flat[: width - 1].rsplit(" ", 1)[0]
    return cut + "…"
