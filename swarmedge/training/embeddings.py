"""Word vectors learnt from the training texts alone, to start SwarmFormer's embedding from.

A SwarmFormer trained on 22,500 reviews sees most of its 30k words a handful of times, so
their randomly initialised embeddings (norm ~sqrt(d)) stay noise that mean pooling adds to
every review. Starting from co-occurrence vectors gives rare words the geometry of the
words they appear with. The method is count-based and deterministic: a positive pointwise
mutual information (PPMI) matrix of tokens within a window, with context-distribution
smoothing, factorised by a truncated SVD (Levy, Goldberg & Dagan, TACL 2015). No corpus
beyond the training split and no labels are used.
"""

import numpy as np
import torch

WINDOW = 5  # tokens either side; co-occurrences weighted 1/distance
SMOOTHING = 0.75  # context counts raised to this power (the word2vec negative-sampling trick)


def ppmi_vectors(docs: list[list[int]], vocab_size: int, dim: int, skip_ids, seed: int = 0) -> torch.Tensor:
    """``(vocab_size, dim)`` vectors for ``docs`` (token-id lists); rows of tokens never seen
    next to another token are NaN (the caller keeps its own initialisation there).

    Rows are L2-normalised, then scaled to norm sqrt(dim): the norm of torch's default
    N(0, 1) embedding rows, which the rest of the model was designed around.
    """
    keys, weights = _cooccurrences(docs, vocab_size, np.asarray(sorted(skip_ids), dtype=np.int64))
    pairs, inverse = np.unique(keys, return_inverse=True)
    counts = np.bincount(inverse, weights=weights).astype(np.float64)
    rows, cols = pairs // vocab_size, pairs % vocab_size
    row_sum = np.bincount(rows, weights=counts, minlength=vocab_size)
    col_smooth = np.bincount(cols, weights=counts, minlength=vocab_size) ** SMOOTHING
    # PMI = log P(i,j) / (P(i) P_smooth(j)); the total count cancels out.
    pmi = np.log(counts * col_smooth.sum() / (row_sum[rows] * col_smooth[cols]))
    keep = pmi > 0
    matrix = torch.sparse_coo_tensor(np.stack([rows[keep], cols[keep]]), pmi[keep].astype(np.float32),
                                     (vocab_size, vocab_size), check_invariants=False).coalesce()
    with torch.random.fork_rng():  # svd_lowrank draws a random projection; training's stream stays as it was
        torch.manual_seed(seed)
        u, s, _ = torch.svd_lowrank(matrix, q=dim, niter=4)
    vectors = u * s.sqrt()  # (V, dim): symmetric weighting of the singular values
    norms = vectors.norm(dim=1, keepdim=True)
    seen = torch.from_numpy(row_sum > 0) & (norms[:, 0] > 0)
    vectors = vectors / norms.clamp_min(1e-12) * dim**0.5
    vectors[~seen] = float("nan")
    return vectors


def _cooccurrences(docs: list[list[int]], vocab_size: int, skip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flattened (row * V + col) keys and 1/distance weights of every pair within WINDOW,
    both directions; documents are separated by WINDOW markers so no pair crosses two."""
    gap = [-1] * WINDOW
    stream = np.fromiter((t for doc in docs for t in (*doc, *gap)), dtype=np.int64)
    stream[np.isin(stream, skip)] = -1
    keys, weights = [], []
    for k in range(1, WINDOW + 1):
        a, b = stream[:-k], stream[k:]
        ok = (a >= 0) & (b >= 0)
        a, b = a[ok], b[ok]
        keys += [a * vocab_size + b, b * vocab_size + a]
        weights += [np.full(2 * len(a), 1.0 / k, dtype=np.float32)]
    return np.concatenate(keys), np.concatenate(weights)
