"""Publish a reproduced run into zoo/: the checkpoint, and a model card measured from today's export.

    python tools/zoo.py RUN ZOO_NAME --seed N [--workdir runs] [--weights float16]
    python tools/zoo.py --check          # every card against `swarmedge eval` on the full test set

The card's figures are measured here and now from the zoo's own model.pt, never copied from
the training run: PyTorch on the weights as stored, the exported ONNX fp32 and int8 bundles
(this machine's target preset), sizes, and the test-set calibration figures. They go to
zoo/ZOO_NAME/README.md and, for `tests/test_zoo.py` and `swarmedge eval`, to card.json.
``--weights float16`` stores the weights in half precision (loaded as float32: half the
file, the same arithmetic); the card then also shows the fp32 training checkpoint's
figures and how many test predictions the storage changed.
"""

import argparse
import json
import sys
import tempfile
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
BUDGET_BYTES = 25 * 10**6  # zoo/README.md: a model.pt at most 25 MB
SUBSET = {"limit": 1000, "seed": 0}  # what `swarmedge eval --limit 1000` samples from the test set


def store(source: Path, dest: Path, weights: str) -> None:
    """Copy swarmedge checkpoint ``source`` to ``dest``, floating-point weights as ``weights``."""
    import torch

    from swarmedge.checkpoint import save_checkpoint

    ckpt = torch.load(source, map_location="cpu", weights_only=True)
    dtype = {"float32": torch.float32, "float16": torch.float16}[weights]
    ckpt["state_dict"] = {k: v.to(dtype) if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    ckpt["metadata"] = {**ckpt["metadata"], "weights_storage": weights}
    save_checkpoint(ckpt, dest)


def measure(model: Path, data: str, reference: Path | None) -> dict:
    """Everything the card states about ``model`` (a zoo model.pt), measured on the full test set."""
    from swarmedge.calibration import calibration_figures
    from swarmedge.evaluate import evaluate_model
    from swarmedge.export import export_bundle
    from swarmedge.export.targets import detect

    stored = evaluate_model(model, data)
    rows = [_row("PyTorch (weights as stored, computed in fp32)", stored, stored)]
    if reference is not None:
        rows.insert(0, _row("PyTorch fp32 (training checkpoint, before fp16 storage)",
                            evaluate_model(reference, data), stored))
    preset = detect()
    with tempfile.TemporaryDirectory() as tmp:
        fp32, _ = export_bundle(model, Path(tmp) / "fp32.bundle", quantize_mode=None)
        int8, manifest = export_bundle(model, Path(tmp) / "int8.bundle", target=preset)
        rows.append(_row("ONNX fp32", evaluate_model(fp32, data, precision="fp32"), stored))
        rows.append(_row(f"ONNX int8 ({preset})", evaluate_model(int8, data, precision="int8"), stored))
        sizes = {"model.pt": model.stat().st_size, "model.onnx (fp32)": (fp32 / "model.onnx").stat().st_size,
                 f"model.int8.onnx ({preset})": (int8 / "model.int8.onnx").stat().st_size}
        quantized = (manifest.get("quantization") or {}).get("quantized_matmuls")
    import numpy as np
    import torch

    from swarmedge.evaluate import load_test_set

    ckpt = torch.load(model, map_location="cpu", weights_only=True)
    labels = load_test_set(data, ckpt["labels"], kind=ckpt["preprocessing"]["kind"]).labels
    scores = np.array(stored["scores"], dtype=np.float32)
    temperature = (ckpt["metadata"].get("calibration") or {}).get("temperature")
    calibration = {"plain softmax": calibration_figures(scores, labels, 1.0)}
    if temperature:
        calibration["temperature-scaled (this model.pt)"] = calibration_figures(scores, labels, temperature)
    # What tests/test_zoo.py checks in CI, where the full IMDB test set takes too long in PyTorch.
    subset = evaluate_model(model, data, limit=SUBSET["limit"], seed=SUBSET["seed"])
    return {"measured": date.today().isoformat(), "data": data, "samples": stored["samples"], "rows": rows,
            "subset": {**SUBSET, "accuracy": subset["accuracy"], "samples": subset["samples"]},
            "bytes": sizes, "int8_quantized_matmuls": quantized, "temperature": temperature,
            "calibration": calibration}


def _row(variant: str, report: dict, reference: dict) -> dict:
    agree = sum(a == b for a, b in zip(report["predictions"], reference["predictions"])) / report["samples"]
    return {"variant": variant, "accuracy": report["accuracy"], "macro_f1": report["macro_f1"],
            "agreement_with_stored": agree}


def card(zoo_name: str, run: dict, ckpt: dict, figures: dict, weights: str) -> str:
    cfg, train = ckpt["config"], ckpt["metadata"].get("training", {})
    rows = "\n".join(f"| {r['variant']} | {r['accuracy']:.2%} | {r['macro_f1']:.4f} | "
                     f"{r['agreement_with_stored']:.2%} |" for r in figures["rows"])
    stored = next(r for r in figures["rows"] if r["variant"].startswith("PyTorch (weights as stored"))
    published = f"{run['published']:.2f}% (a single run)" if run["published"] is not None else "not published"
    if run["published"] is not None and round(stored["accuracy"] * 100, 2) < run["published"]:
        published += f" - **this model is {run['published'] - stored['accuracy'] * 100:.2f} points below it**"
    storage = ("float16 weights, cast to float32 when loaded (half the file; the computation stays fp32)"
               if weights == "float16" else "float32 weights")
    tokenizer = ", own WordPiece tokenizer" if "tokenizer" in ckpt["preprocessing"] else ""
    sizes = ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in figures["bytes"].items())
    zoo = f"zoo/{zoo_name}"
    lines = [f"# {zoo_name}", "", f"{run['description']}, trained by swarmedge on CPU.", "",
             f"- **Data**: {run['data'].upper()} official train split (a seeded 10% validation split carved from it",
             f"  chose the best epoch: {train.get('val_accuracy', float('nan')):.2%} at epoch {train.get('epoch')});",
             f"  evaluated on the full official test set ({figures['samples']:,} inputs).",
             f"- **Config**: `{json.dumps(cfg)}`", f"- **Labels**: {', '.join(ckpt['labels'])}",
             f"- **Training command**: `{run['command']}` ({run['epochs']} epochs, "
             f"{run['train_seconds_logged'] / 60:.0f} min on {run['machine']['cpu']}, {run['machine']['cores']} cores)",
             f"- **Checkpoint**: `model.pt`, {figures['bytes']['model.pt'] / 1e6:.2f} MB ({storage}{tokenizer}); "
             "loads with `torch.load(weights_only=True)`.",
             f"- **Published accuracy of the original work**: {published}", "",
             f"Measured on {figures['measured']} from this model.pt and its export today "
             f"(`python tools/zoo.py {run['name']} {zoo_name} --seed {run['seed']}"
             f"{' --weights float16' if weights == 'float16' else ''}`); "
             f"`swarmedge eval {zoo}/model.pt --data {run['data']}` gives the first PyTorch row's accuracy:", "",
             "| variant | test accuracy | macro F1 | agreement with the stored model in PyTorch |",
             "| --- | --- | --- | --- |", rows, "", f"Sizes: {sizes}."]
    if figures["int8_quantized_matmuls"] == 0:
        lines += ["", "The int8 model quantizes nothing: every product of this model is narrower than 16, where "
                      "run-time quantization costs more than int8 saves, so `model.int8.onnx` is the fp32 computation."]
    lines += ["", f"Reproduce: `python tools/reproduce.py --only {run['name']} --seed {run['seed']}` "
                  "(every seed's figures: [docs/RESULTS.md](../../docs/RESULTS.md))."]
    lines += ["", probabilities(ckpt, figures)]
    return "\n".join(lines) + "\n"


def probabilities(ckpt: dict, figures: dict) -> str:
    """The card's calibration paragraph and table: the temperature, where it was fitted, and the
    test-set ECE/NLL of the plain softmax and of the temperature-scaled probabilities."""
    c = ckpt["metadata"].get("calibration")
    head = (f"Probabilities: temperature scaling, T = {c['temperature']:.3f}, fitted on {c['fitted_on']} "
            "(never the test set). On the full test set:" if c else
            "Probabilities: the plain softmax (no temperature fitted; `swarmedge calibrate` fits one). On the full "
            "test set:")
    rows = [f"| {name} | {f['ece']:.4f} | {f['nll']:.4f} | "
            f"{f['mean_confidence_when_wrong']:.3f} |" for name, f in figures["calibration"].items()]
    return "\n".join([head, "", "| probabilities | ECE (10 bins) | NLL | mean confidence when wrong |",
                      "| --- | ---: | ---: | ---: |", *rows])


def check() -> int:
    """Run `swarmedge eval zoo/NAME/model.pt --data D --json` for every zoo model; compare with its card."""
    import subprocess

    failed = 0
    for card_path in sorted((ROOT / "zoo").glob("*/card.json")):
        card = json.loads(card_path.read_text())
        model = card_path.parent / "model.pt"
        out = subprocess.run([sys.executable, "-m", "swarmedge.cli", "eval", str(model), "--data", card["data"],
                              "--json", "--quiet"], capture_output=True, text=True, check=True).stdout
        got = json.loads(out)["accuracy"]
        want = next(r for r in card["rows"] if r["variant"].startswith("PyTorch (weights as stored"))["accuracy"]
        ok = got == want
        failed += not ok
        sys.stdout.write(f"{'ok' if ok else 'DIFFERS'}  {model.relative_to(ROOT)}: swarmedge eval {got:.2%}, "
                         f"card {want:.2%} ({card['samples']:,} test inputs)\n")
    return failed


def main() -> None:
    import torch

    if sys.argv[1:] == ["--check"]:
        sys.exit(1 if check() else 0)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("zoo_name")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=ROOT / "runs")
    parser.add_argument("--weights", choices=["float32", "float16"], default="float32")
    args = parser.parse_args()
    from reproduce import checkpoint_name

    run = json.loads((ROOT / "docs" / "results" / args.run / f"seed-{args.seed}.json").read_text())
    source = args.workdir / checkpoint_name(args.run, args.seed)
    dest = ROOT / "zoo" / args.zoo_name
    dest.mkdir(parents=True, exist_ok=True)
    store(source, dest / "model.pt", args.weights)
    if (dest / "model.pt").stat().st_size > BUDGET_BYTES:
        sys.exit(f"zoo/{args.zoo_name}/model.pt is {(dest / 'model.pt').stat().st_size / 1e6:.1f} MB, over the "
                 f"{BUDGET_BYTES / 1e6:.0f} MB budget of zoo/README.md: try --weights float16")
    figures = measure(dest / "model.pt", run["data"], source if args.weights != "float32" else None)
    ckpt = torch.load(dest / "model.pt", map_location="cpu", weights_only=True)
    (dest / "card.json").write_text(json.dumps({"run": args.run, "seed": args.seed, "weights": args.weights,
                                                **figures}, indent=2) + "\n")
    (dest / "README.md").write_text(card(args.zoo_name, run, ckpt, figures, args.weights))


if __name__ == "__main__":
    main()
