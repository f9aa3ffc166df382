"""Publish a reproduced run into zoo/: the checkpoint and a model card from its results.

    python tools/zoo.py RUN_NAME ZOO_NAME [--workdir runs]
"""

import argparse
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def card(zoo_name: str, result: dict, ckpt: dict, size: int) -> str:
    cfg = ckpt["config"]
    train = ckpt["metadata"].get("training", {})
    rows = "\n".join(f"| {r['variant']} | {r['accuracy']:.2%} | {r['macro_f1']:.4f} | "
                     f"{r['agreement_with_pytorch']:.2%} |" for r in result["rows"])
    minutes = result["train_seconds_logged"] / 60
    tokenizer = ", own WordPiece tokenizer" if "tokenizer" in ckpt["preprocessing"] else ""
    published = f"{result['published']:.2f}%" if result["published"] is not None else "not published"
    ours = result["rows"][0]["accuracy"] * 100
    if result.get("target") is not None and ours < result["target"]:
        published += (f" - **this model is {result['published'] - ours:.1f} points below it**; what was tried "
                      f"and what is next: [docs/RESULTS.md](../../docs/RESULTS.md)")
    return f"""# {zoo_name}

{result['description']}, trained by swarmedge on CPU.

- **Data**: {result['data'].upper()} official train split (a seeded 10% validation split carved from it
  chose the best epoch: {train.get('val_accuracy', float('nan')):.2%} at epoch {train.get('epoch')});
  evaluated on the full official test set ({result['rows'][0]['samples']} inputs).
- **Config**: `{json.dumps(cfg)}`
- **Labels**: {', '.join(ckpt['labels'])}
- **Training command**: `{result['command']}` ({result['epochs']} epochs, {minutes:.0f} min on
  {result['machine']['cpu']}, {result['machine']['cores']} cores)
- **Checkpoint**: `model.pt`, {size / 2**20:.2f} MB (fp32 weights{tokenizer}); loads with
  `torch.load(weights_only=True)`.
- **Published accuracy of the original work**: {published}

| variant | test accuracy | macro F1 | agreement with PyTorch fp32 |
| --- | --- | --- | --- |
{rows}

ONNX sizes: {', '.join(f'{k} {v / 2**20:.2f} MB' for k, v in result['onnx_bytes'].items())}.
Reproduce: `python tools/reproduce.py --only {result['name']}`.
{probabilities(ckpt)}"""


def probabilities(ckpt: dict) -> str:
    """The card's calibration paragraph: the temperature and its held-out figures (the test-set
    figures come from `swarmedge eval MODEL --data ...`, which reports ECE and NLL)."""
    c = ckpt["metadata"].get("calibration")
    if not c:
        return "\nProbabilities: the plain softmax (no temperature fitted; `swarmedge calibrate` fits one).\n"
    return (f"\nProbabilities: temperature scaling, T = {c['temperature']:.3f}, fitted on {c['fitted_on']}; "
            f"there ECE {c['before']['ece']:.4f} -> {c['after']['ece']:.4f} and NLL {c['before']['nll']:.4f} -> "
            f"{c['after']['nll']:.4f}.\n")


def main() -> None:
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("zoo_name")
    parser.add_argument("--workdir", type=Path, default=ROOT / "runs")
    args = parser.parse_args()
    result = json.loads((ROOT / "docs" / "results" / f"{args.run}.json").read_text())
    dest = ROOT / "zoo" / args.zoo_name
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(args.workdir / f"{args.run}.pt", dest / "model.pt")
    ckpt = torch.load(dest / "model.pt", weights_only=True)
    (dest / "README.md").write_text(card(args.zoo_name, result, ckpt, (dest / "model.pt").stat().st_size))


if __name__ == "__main__":
    main()
