"""What training needs to know per model family: batches, loss, predictions."""

import numpy as np
import torch
from torch.nn import functional as F

from swarmedge.runtimes.images import images_to_boids

# --augment affine: how far a training digit may be turned, scaled and moved. Small enough that
# a 6 stays a 6 (no flips, no half turns), and a shift keeps the digit inside the 28x28 frame.
ROTATION_DEGREES = 15.0
SCALE_RANGE = (0.9, 1.1)
SHIFT_PIXELS = 2.0
BOID_LOSSES = ("squared", "distance")  # --loss: see BoidsTask


class BoidsTask:
    """Pull every valid boid towards its class target, averaged over the valid boids.

    ``loss``: "squared" (each boid's squared distance to its target; this project's recipes) or
    "distance" (the unsquared distance, as the original work's mnist.py, commit dd2c185, which
    averages it over the padded grid instead: the same up to a factor per batch).
    ``augment``: each training digit's boids get a random rotation, scale and shift (one per
    digit per batch, about the image centre) before the swarm flies; evaluation never does.
    """

    def __init__(self, model, preprocessing: dict, augment: bool = False, loss: str = "squared"):
        self.model = model
        self.pre = preprocessing
        self.augment = augment
        self.squared = loss == "squared"

    def encode(self, inputs) -> list:
        boids = [images_to_boids(img[None], self.pre["threshold"], self.pre["habitat_scaling"]) for img in inputs]
        return [b[0][0, : b[1][0]] for b in boids]  # one (n_i, 2) array per image

    @staticmethod
    def order(encoded, rng: np.random.Generator, batch_size: int) -> list[np.ndarray]:
        """Shuffled batches of similar boid counts: less padding, same expectation."""
        idx = rng.permutation(len(encoded))
        chunks = np.array_split(idx, max(1, len(idx) // (batch_size * 8)))
        batches = []
        for chunk in chunks:
            chunk = chunk[np.argsort([len(encoded[i]) for i in chunk], kind="stable")]
            batches += [chunk[s:s + batch_size] for s in range(0, len(chunk), batch_size)]
        return [batches[i] for i in rng.permutation(len(batches))]

    @staticmethod
    def collate(encoded, idx) -> tuple[torch.Tensor, ...]:
        n = max(len(encoded[i]) for i in idx)
        boids = np.zeros((len(idx), n, 2), dtype=np.float32)
        lengths = np.array([len(encoded[i]) for i in idx], dtype=np.int64)
        for row, i in enumerate(idx):
            boids[row, : lengths[row]] = encoded[i]
        return torch.from_numpy(boids), torch.from_numpy(lengths)

    def random_affine(self, boids: torch.Tensor) -> torch.Tensor:
        """(B, N, 2) boid coordinates, each digit turned, scaled and shifted at random about the
        image centre (0 in boid coordinates); padding moves too but stays masked. Drawn from
        torch's seeded generator, so a resumed run draws what it would have."""
        b = boids.shape[0]
        angle = (torch.rand(b) * 2 - 1) * ROTATION_DEGREES * torch.pi / 180
        scale = SCALE_RANGE[0] + torch.rand(b) * (SCALE_RANGE[1] - SCALE_RANGE[0])
        pixel = 2 * self.pre["habitat_scaling"] / 27  # one pixel in boid coordinates (images_to_boids)
        shift = (torch.rand(b, 1, 2) * 2 - 1) * SHIFT_PIXELS * pixel
        cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
        matrix = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # (B, 2, 2)
        return boids @ matrix.transpose(1, 2) + shift

    def loss(self, inputs, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        boids, lengths = inputs
        if self.augment:
            boids = self.random_affine(boids)
        scores, _, trajectory = self.model(boids, lengths)
        final = trajectory[:, -1]  # (B, N, D)
        valid = (torch.arange(final.shape[1]) < lengths[:, None]).to(final.dtype)  # (B, N)
        dist = ((final - self.model.targets(labels)[:, None, :]) ** 2).sum(-1)  # (B, N) squared distances
        if not self.squared:  # the gradient of sqrt at 0 is infinite: a boid exactly on its target adds none
            dist = dist.clamp_min(1e-12).sqrt()
        return (dist * valid).sum() / valid.sum(), scores

    def scores(self, inputs, model=None) -> torch.Tensor:
        return (model or self.model)(*inputs)[0]


class SwarmFormerTask:
    """Cross-entropy over the two sentiment classes, inputs tokenized once up front.

    ``token_dropout`` hides a random share of each training text's tokens behind [UNK]:
    an augmentation that needs no extra corpora and keeps the model from leaning on a few
    memorised words. Special tokens and padding are never hidden.
    """

    def __init__(self, model, preprocessing: dict, label_smoothing: float = 0.0, token_dropout: float = 0.0):
        from swarmedge.runtimes.text import TextEncoder

        self.model = model
        self.encoder = TextEncoder.for_preprocessing(preprocessing, preprocessing["tokenizer"])
        self.label_smoothing = label_smoothing
        self.token_dropout = token_dropout
        vocab = self.encoder.tokenizer.get_vocab()
        self.unk_id = vocab["[UNK]"]
        self.special_ids = torch.tensor(sorted({vocab[t] for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]")}
                                               | {preprocessing["pad_id"]}))

    def start_from_ppmi(self, texts, seed: int) -> None:
        """Overwrite the token embedding with PPMI word vectors learnt from ``texts`` (no labels)."""
        from swarmedge.training.embeddings import ppmi_vectors

        table = self.model.embedding.embed.weight
        docs = [e.ids for e in self.encoder.tokenizer.encode_batch(list(texts))]  # whole texts, untruncated
        vectors = ppmi_vectors(docs, table.shape[0], table.shape[1], self.special_ids.tolist(), seed)
        learnt = ~vectors.isnan().any(dim=1)
        with torch.no_grad():
            table[learnt] = vectors[learnt]

    def encode(self, inputs) -> np.ndarray:
        return np.concatenate([self.encoder.encode(inputs[s:s + 1024]) for s in range(0, len(inputs), 1024)])

    @staticmethod
    def order(encoded, rng: np.random.Generator, batch_size: int) -> list[np.ndarray]:
        idx = rng.permutation(len(encoded))
        return [idx[s:s + batch_size] for s in range(0, len(idx), batch_size)]

    @staticmethod
    def collate(encoded, idx) -> tuple[torch.Tensor, ...]:
        return (torch.from_numpy(encoded[idx]),)

    def loss(self, inputs, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        (ids,) = inputs
        if self.token_dropout > 0:  # drawn from torch's seeded generator, restored on --resume
            hide = (torch.rand(ids.shape) < self.token_dropout) & ~torch.isin(ids, self.special_ids)
            ids = ids.masked_fill(hide, self.unk_id)
        logits = self.model(ids)
        return F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing), logits

    def scores(self, inputs, model=None) -> torch.Tensor:
        return (model or self.model)(*inputs)
