"""Score pre-made input batches with a bundle: what arm-check and remote runs execute on the device.

    python -m swarmedge.runtimes.score BUNDLE PRECISION FEEDS.npz OUT.npy [THREADS]

FEEDS.npz holds ``b<i>.<input name>`` arrays; OUT.npy gets the concatenated class scores.
"""

import sys

import numpy as np


def save_feeds(path, feeds: list[dict[str, np.ndarray]]) -> None:
    np.savez(path, **{f"b{i}.{name}": arr for i, f in enumerate(feeds) for name, arr in f.items()})


def load_feeds(path) -> list[dict[str, np.ndarray]]:
    with np.load(path, allow_pickle=False) as z:
        batches: dict[int, dict[str, np.ndarray]] = {}
        for key in z.files:
            index, name = key.split(".", 1)
            batches.setdefault(int(index[1:]), {})[name] = z[key]
    return [batches[i] for i in sorted(batches)]


def score(bundle, precision: str, feeds: list[dict[str, np.ndarray]], threads: int | None = None) -> np.ndarray:
    from swarmedge.runtimes.classifier import Classifier

    clf = Classifier(bundle, precision=precision, threads=threads)
    return np.concatenate([clf.scores(f) for f in feeds])


def main(argv: list[str]) -> int:
    bundle, precision, feeds_path, out = argv[:4]
    threads = int(argv[4]) if len(argv) > 4 else None
    np.save(out, score(bundle, precision, load_feeds(feeds_path), threads))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
