"""Publish a reproduced run into zoo/: the checkpoint, and a model card measured from today's export.

    python tools/zoo.py RUN ZOO_NAME --seed N [--workdir runs] [--weights float16]
    python tools/zoo.py --check          # every card against `swarmedge eval` on the full test set

The card's figures are measured here and now from the zoo's own model.pt, never copied from
the training run: PyTorch on the weights as stored, the exported ONNX fp32 and int8 bundles
(this machine's target preset), sizes, and the test-set calibration figures. They go to
zoo/ZOO_NAME/README.md and, for tests/test_zoo.py and --check, to card.json. Everything is
built in a staging folder that replaces zoo/ZOO_NAME only when all of it succeeded.
``--weights float16`` stores the weights in half precision (loaded as float32: about half the
file for the large models, the same arithmetic); the card then also shows the fp32 training
checkpoint's figures and how many test predictions the storage changed.
"""

import argparse
import json
import re
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
BUDGET_BYTES = 25 * 10**6  # zoo/README.md: a model.pt at most 25 MB
SUBSET = {"limit": 1000, "seed": 0}  # what `swarmedge eval --limit 1000` samples from the test set
STORED = "PyTorch (weights as stored, computed in fp32)"  # the row `swarmedge eval zoo/NAME/model.pt` gives


class Refused(Exception):
    """A one-line reason to publish or check nothing."""


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
    """Everything the card states about ``model`` (a zoo model.pt), measured on the full test set.
    ``reference``: the fp32 training checkpoint, when ``model`` stores its weights otherwise."""
    import numpy as np
    import torch

    from swarmedge.calibration import calibration_figures
    from swarmedge.evaluate import evaluate_model, load_test_set
    from swarmedge.export import export_bundle
    from swarmedge.export.targets import detect

    stored = evaluate_model(model, data)
    rows = [_row(STORED, stored, stored)]
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
    agree = sum(a == b for a, b in zip(report["predictions"], reference["predictions"]))
    return {"variant": variant, "accuracy": report["accuracy"], "macro_f1": report["macro_f1"],
            "agreement_with_stored": agree / report["samples"], "differing_predictions": report["samples"] - agree}


def card(zoo_name: str, run: dict, ckpt: dict, figures: dict, weights: str) -> str:
    cfg, train = ckpt["config"], ckpt["metadata"].get("training", {})
    rows = "\n".join(f"| {r['variant']} | {r['accuracy']:.2%} | {r['macro_f1']:.4f} | "
                     f"{r['agreement_with_stored']:.2%} ({r['differing_predictions']:,} differ) |"
                     for r in figures["rows"])
    stored = next(r for r in figures["rows"] if r["variant"] == STORED)
    published = f"{run['published']:.2f}% (a single run)" if run["published"] is not None else "not published"
    if run["published"] is not None and round(stored["accuracy"] * 100, 2) < run["published"]:
        published += f" - **this model is {run['published'] - stored['accuracy'] * 100:.2f} points below it**"
    storage = ("float16 weights, cast to float32 when loaded, so the computation stays fp32"
               if weights == "float16" else "float32 weights")
    tokenizer = "; own WordPiece tokenizer" if "tokenizer" in ckpt["preprocessing"] else ""
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
             f"{' --weights float16' if weights == 'float16' else ''}`). "
             f"`swarmedge eval {zoo}/model.pt --data {run['data']}` gives the row *{STORED}*:", "",
             "| variant | test accuracy | macro F1 | predictions equal to the stored model's in PyTorch |",
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


def publish(run_name: str, zoo_name: str, seed: int, workdir: Path, weights: str) -> str:
    """Build zoo/ZOO_NAME in a staging folder and swap it in; return a one-line summary."""
    import torch
    from reproduce import checkpoint_name

    from swarmedge.atomic import staged_directory

    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", zoo_name):
        raise Refused(f"zoo name {zoo_name!r}: one folder name that starts with a lower-case letter or digit "
                      "and goes on with those, '.', '_' or '-' (e.g. boids-5v6)")
    record_path = ROOT / "docs" / "results" / run_name / f"seed-{seed}.json"
    if not record_path.is_file():
        raise Refused(f"no {record_path.relative_to(ROOT)}: run python tools/reproduce.py --only {run_name} "
                      f"--seed {seed} first")
    run = json.loads(record_path.read_text())
    source = workdir / checkpoint_name(run_name, seed)
    if not source.is_file():
        raise Refused(f"no checkpoint {source}: --workdir is the folder tools/reproduce.py trained in")
    trained = torch.load(source, map_location="cpu", weights_only=True)["metadata"].get("training", {})
    if trained.get("seed") != seed:
        raise Refused(f"{source} was trained with seed {trained.get('seed')}, not {seed}")
    with staged_directory(ROOT / "zoo" / zoo_name) as stage:
        store(source, stage / "model.pt", weights)
        size = (stage / "model.pt").stat().st_size
        if size > BUDGET_BYTES:
            raise Refused(f"model.pt would be {size / 1e6:.1f} MB, over the {BUDGET_BYTES / 1e6:.0f} MB budget of "
                          "zoo/README.md: try --weights float16")
        figures = measure(stage / "model.pt", run["data"], source if weights != "float32" else None)
        fp32 = figures["rows"][0]["accuracy"]  # the training checkpoint's own figure
        if fp32 != run["rows"][0]["accuracy"]:
            raise Refused(f"{source} scores {fp32:.2%} in PyTorch, but {record_path.relative_to(ROOT)} records "
                          f"{run['rows'][0]['accuracy']:.2%}: not the checkpoint that run made")
        ckpt = torch.load(stage / "model.pt", map_location="cpu", weights_only=True)
        (stage / "card.json").write_text(json.dumps({"run": run_name, "seed": seed, "weights": weights,
                                                     **figures}, indent=2) + "\n")
        (stage / "README.md").write_text(card(zoo_name, run, ckpt, figures, weights))
    stored = next(r for r in figures["rows"] if r["variant"] == STORED)
    return (f"zoo/{zoo_name}: model.pt {size / 1e6:.2f} MB, PyTorch {stored['accuracy']:.2%}, "
            f"{figures['rows'][-1]['variant']} {figures['rows'][-1]['accuracy']:.2%}; card in zoo/{zoo_name}/README.md")


def check() -> int:
    """`swarmedge eval zoo/NAME/model.pt --data D --json` for every zoo model against its card's
    stored-model row (accuracy and test-set size); prints one line per model, returns the failures."""
    failed = 0
    for folder in sorted(p.parent for p in (ROOT / "zoo").glob("*/model.pt")):
        try:
            try:
                card_data = json.loads((folder / "card.json").read_text())
                want = next(r for r in card_data["rows"] if r["variant"] == STORED)
                data, samples = card_data["data"], card_data["samples"]
            except (OSError, ValueError, KeyError, StopIteration) as exc:
                raise Refused(f"no readable card.json ({type(exc).__name__}: {exc}); publish it with tools/zoo.py") \
                    from None
            result = subprocess.run([sys.executable, "-m", "swarmedge.cli", "eval", str(folder / "model.pt"),
                                     "--data", data, "--json", "--quiet"], capture_output=True, text=True)
            if result.returncode:
                raise Refused("swarmedge eval failed: " + (result.stderr.strip().splitlines() or ["?"])[-1])
            got = json.loads(result.stdout)
            same = (got["accuracy"], got["samples"]) == (want["accuracy"], samples)
            line = (f"{'ok' if same else 'DIFFERS'}  swarmedge eval {got['accuracy']:.2%} on {got['samples']:,}, "
                    f"card {want['accuracy']:.2%} on {samples:,}")
        except Refused as exc:
            same, line = False, f"FAILED  {exc}"
        failed += not same
        sys.stdout.write(f"{line}  (zoo/{folder.name})\n")
    return failed


def main() -> None:
    from swarmedge.errors import SwarmedgeError

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", nargs="?", help="a run of tools/reproduce.py, e.g. boids-r10 (--list shows them)")
    parser.add_argument("zoo_name", nargs="?", help="the folder under zoo/, e.g. boids-5v6")
    parser.add_argument("--seed", type=int, help="which of the run's seeds to publish")
    parser.add_argument("--workdir", type=Path, default=ROOT / "runs", help="where tools/reproduce.py trained it")
    parser.add_argument("--weights", choices=["float32", "float16"], default="float32")
    parser.add_argument("--check", action="store_true", help="compare every zoo card with swarmedge eval, then exit")
    args = parser.parse_args()
    if args.check:
        if args.run or args.zoo_name:
            parser.error("--check takes no RUN or ZOO_NAME")
        sys.exit(1 if check() else 0)
    if not (args.run and args.zoo_name and args.seed is not None):
        parser.error("give RUN, ZOO_NAME and --seed (or --check)")
    from reproduce import RUNS

    if args.run not in RUNS:  # exit 2, as argparse's usage errors
        sys.stderr.write(f"tools/zoo.py: unknown run {args.run!r}; the runs of tools/reproduce.py are: "
                         f"{', '.join(RUNS)}\n")
        sys.exit(2)
    try:
        sys.stdout.write(publish(args.run, args.zoo_name, args.seed, args.workdir, args.weights) + "\n")
    except (Refused, SwarmedgeError) as exc:
        where = f"zoo/{args.zoo_name}" if "/" not in args.zoo_name else "the zoo"
        sys.stderr.write(f"tools/zoo.py: {exc}; {where} is unchanged\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
