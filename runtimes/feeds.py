"""Raw inputs -> model-ready batches, exactly as the device preprocesses them (numpy only)."""

from dataclasses import dataclass

import numpy as np


@dataclass
class Samples:
    """Raw inputs (a list of texts or an (N, 28, 28) image array) and where they came from."""

    raw: object
    source: str

    def __len__(self) -> int:
        return len(self.raw)

    def split(self, first: int, rng: np.random.Generator) -> tuple["Samples", "Samples"]:
        """Disjoint seeded subsets: the first ``first`` for calibration, the rest held out."""
        order = rng.permutation(len(self.raw))
        pick = (lambda idx: [self.raw[i] for i in idx]) if isinstance(self.raw, list) else (lambda idx: self.raw[idx])
        return Samples(pick(order[:first]), self.source), Samples(pick(order[first:]), self.source)


def feeds_for(samples: Samples, preprocessing: dict, tokenizer_json: str | None, batch_size: int = 32,
              lengths: tuple[int, ...] = (), uniform: bool = False) -> list[dict[str, np.ndarray]]:
    """Model-ready input batches, through the device preprocessing.

    For text, ``lengths`` adds batches truncated to those lengths (calibrating across the
    lengths served). ``uniform`` makes every batch the same shape (full batches, boids
    padded to the largest count), which onnxruntime's histogram calibrators require.
    """
    raw = samples.raw
    if preprocessing["kind"] == "boids":
        raw = raw[(raw > preprocessing["threshold"]).any(axis=(1, 2))]  # blank images have no boids
    if uniform and len(raw) % batch_size:
        wrap = np.arange(len(raw), len(raw) + batch_size - len(raw) % batch_size) % len(raw)
        raw = list(raw) + [raw[i] for i in wrap] if isinstance(raw, list) else np.concatenate([raw, raw[wrap]])
    chunks = [raw[s:s + batch_size] for s in range(0, len(raw), batch_size)]
    if preprocessing["kind"] == "text":
        from swarmedge.runtimes.text import TextEncoder

        served = [preprocessing["seq_len"]] + ([] if uniform else list(lengths))
        batches = []
        for seq_len in dict.fromkeys(served):
            enc = TextEncoder.for_preprocessing(preprocessing, tokenizer_json, seq_len)
            batches += [{"input_ids": enc.encode(list(chunk))} for chunk in chunks]
        return batches
    from swarmedge.runtimes.images import images_to_boids

    batches = [dict(zip(("boids", "lengths"), images_to_boids(chunk, preprocessing["threshold"],
                                                               preprocessing["habitat_scaling"]))) for chunk in chunks]
    if uniform and batches:
        n = max(b["boids"].shape[1] for b in batches)
        for b in batches:
            b["boids"] = np.pad(b["boids"], ((0, 0), (0, n - b["boids"].shape[1]), (0, 0)))
    return batches
