"""The original work's training loop for one boid configuration, to see how much its way of
reporting adds to a figure.

    python tools/original_loop.py --blocks 2 --no-recurrent --seed 0 -o d2-original-s0.jsonl

The original (github.com/danielvarga/transformer-as-swarm, mnist.py at commit dd2c185, whose
README gives the published figures; facts read, no code copied) trains with Adam at a constant
lr 1e-3 on batches of 256 drawn at random from all of MNIST train's fives and sixes, for 100
epochs. Its loss is each boid's unsquared distance to its class target, averaged over the padded
(batch, boid) grid, and it prints test accuracy after every epoch, with a digit counted right
when the swarm's mean is nearest its class's vertex of the unit cube among all 8. This script
does the same with swarmedge's model (boids.py) and data, and writes one JSON line per epoch
(all when the last epoch is done: an interrupted run writes nothing);
at the end it prints the last epoch's test accuracy, the mean of the last 10, and the best of
all epochs (what reading off the highest printed figure would report). No checkpoint is kept:
it measures a reporting practice, it makes no model.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from swarmedge.datasets import load_dataset
from swarmedge.models.boids import BoidsConfig, BoidSwarm, class_bits
from swarmedge.runtimes.images import images_to_boids


def boid_lists(images: np.ndarray) -> list[torch.Tensor]:
    """(N, 28, 28) images in 0..1 -> one (n_i, 2) float32 tensor of boid coordinates per image."""
    boids, lengths = images_to_boids(images)
    return [torch.from_numpy(b[:n].copy()) for b, n in zip(boids, lengths)]


def padded(boids: list[torch.Tensor], idx) -> tuple[torch.Tensor, torch.Tensor]:
    """The digits at ``idx`` as (B, N, 2) zero-padded boids and (B,) int64 lengths."""
    chosen = [boids[i] for i in idx]
    lengths = torch.tensor([len(b) for b in chosen])
    return torch.nn.utils.rnn.pad_sequence(chosen, batch_first=True), lengths


def test_accuracy(model: BoidSwarm, boids: list[torch.Tensor], labels: torch.Tensor) -> float:
    """Share of digits whose swarm mean is nearest their class's vertex among all 8 of the unit cube."""
    vertices = class_bits(8)
    correct = 0
    with torch.no_grad():
        for s in range(0, len(labels), 1000):
            idx = range(s, min(s + 1000, len(labels)))
            _, mean, _ = model(*padded(boids, idx))
            nearest = torch.cdist(mean[:, :3], vertices).argmin(1)
            correct += int((nearest == labels[s:s + 1000]).sum())
    return correct / len(labels)


def at_least(low: int):
    """An argparse type: an integer >= ``low``, refused in argparse's one line otherwise."""
    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is below {low}")
        return value
    parse.__name__ = "integer"  # argparse names the type in its error: "invalid integer value"
    return parse


class _Help(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


def train(args, say) -> list[dict]:
    """Train as the original does; return one row per epoch (``say`` is told each one)."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_set = load_dataset("mnist", "train", digits=(5, 6), data=args.data)
    test_set = load_dataset("mnist", "test", digits=(5, 6), data=args.data)
    train_boids, test_boids = boid_lists(train_set.inputs), boid_lists(test_set.inputs)
    train_labels, test_labels = torch.from_numpy(train_set.labels), torch.from_numpy(test_set.labels)
    model = BoidSwarm(BoidsConfig(d_model=args.d_model, blocks=args.blocks, recurrent=args.recurrent)).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(args.seed)
    rows = []
    for epoch in range(1, args.epochs + 1):
        t0, losses = time.time(), []
        order = rng.permutation(len(train_labels))
        for s in range(0, len(order), 256):
            idx = order[s:s + 256]
            boids, lengths = padded(train_boids, idx)
            _, _, trajectory = model(boids, lengths)
            final = trajectory[:, -1]  # (B, N, D)
            valid = (torch.arange(final.shape[1]) < lengths[:, None]).to(final.dtype)
            distance = (final - model.targets(train_labels[idx])[:, None, :]).norm(dim=-1)  # (B, N)
            loss = (distance * valid).mean()  # padded places count as 0, as in the original
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        model.eval()
        accuracy = test_accuracy(model, test_boids, test_labels)
        model.train()
        rows.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "test_accuracy": accuracy,
                     "seconds": round(time.time() - t0, 1), "test_digits": len(test_labels)})
        say(f"epoch {epoch}: loss {rows[-1]['train_loss']:.4f}  test {accuracy:.2%}")
    return rows


def main() -> None:
    from swarmedge.atomic import write_bytes
    from swarmedge.errors import SwarmedgeError
    from swarmedge.output_paths import check_new_checkpoint, check_output_file

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=_Help)
    parser.add_argument("--blocks", type=at_least(1), default=10, help="steps of the swarm")
    parser.add_argument("--no-recurrent", dest="recurrent", action="store_false",
                        help="distinct blocks instead of one weight-shared block")
    parser.add_argument("--d-model", type=at_least(3), default=3, help="dimensions the boids fly in")
    parser.add_argument("--epochs", type=at_least(1), default=100, help="the original ran 100")
    parser.add_argument("--seed", type=at_least(0), default=0)
    parser.add_argument("--threads", type=at_least(1), default=1)
    parser.add_argument("-o", "--output", type=Path, required=True,
                        help="JSON Lines, one row per epoch, written when the last epoch is done")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    parser.add_argument("--data", type=Path, help="where MNIST is (default: $SWARMEDGE_DATA, else download)")
    args = parser.parse_args()

    def say(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    try:
        check_output_file(args.output)
        check_new_checkpoint(args.output, args.overwrite)
        rows = train(args, say)
        write_bytes(args.output, "".join(json.dumps(r) + "\n" for r in rows).encode())
    except SwarmedgeError as exc:
        sys.stderr.write(f"tools/original_loop.py: {exc}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write(f"tools/original_loop.py: interrupted; nothing written to {args.output}\n")
        sys.exit(130)
    figures = [r["test_accuracy"] for r in rows]
    best, last = int(np.argmax(figures)), min(10, len(figures))
    say(f"last epoch {figures[-1]:.2%}; mean of the last {last} {np.mean(figures[-last:]):.2%}; best of "
        f"{len(figures)} epochs {figures[best]:.2%} (epoch {best + 1}) on {rows[0]['test_digits']:,} test digits")


if __name__ == "__main__":
    main()
