"""The boid block's training-time arithmetic: the same maths as boids.py, less memory traffic.

In 3 dimensions a boid's feed-forward layer widens it to 512 hidden units and back. Autograd
then writes and reads the (boids, 512) activations about six times per block, which makes a
training step memory-bound. `chunked_feed_forward` computes the layer over 256 boids at a time,
so the activations stay in cache, and recomputes them in backward instead of keeping them.
Measured on the 2-core machine, one thread, while other training runs shared it (so the
ratios matter, not the times): fwd + bwd of one block's feed-forward over 23,040 boids, 241 ms
as plain autograd and 71 ms chunked (at d 100: 340 and 260 ms). Attention goes through
``F.scaled_dot_product_attention``'s CPU flash kernel: 143 ms against 36 ms at d 3. A whole
10-block training step (128 digits of up to 180 boids): 2.9 s plain, 1.5 s this way at d 3;
7.0 and 6.3 s at d 100, where the arithmetic, not memory, is the cost.

Used only while training (``module.training`` and gradients on); evaluation, export and the
conformance tests run the plain code in boids.py. The results agree with it to float
rounding (tests/test_models.py).
"""

import torch
from torch.nn import functional as F

ROWS = 256  # boids per chunk: 256 x 512 float32 activations are 0.5 MB


class _ChunkedFeedForward(torch.autograd.Function):
    """relu(x W1^T + b1) W2^T + b2 over (M, D) rows, ROWS at a time; backward recomputes."""

    @staticmethod
    def forward(ctx, x, w1, b1, w2, b2):
        ctx.save_for_backward(x, w1, b1, w2)
        out = torch.empty(x.shape[0], w2.shape[0], dtype=x.dtype)
        for s in range(0, x.shape[0], ROWS):
            torch.addmm(b2, F.relu(torch.addmm(b1, x[s:s + ROWS], w1.t())), w2.t(), out=out[s:s + ROWS])
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, w1, b1, w2 = ctx.saved_tensors
        grad_x = torch.empty_like(x)
        grad_w1, grad_b1, grad_w2 = torch.zeros_like(w1), torch.zeros_like(b1), torch.zeros_like(w2)
        grad_out = grad_out.contiguous()
        for s in range(0, x.shape[0], ROWS):
            rows, grad_rows = x[s:s + ROWS], grad_out[s:s + ROWS]
            pre = torch.addmm(b1, rows, w1.t())  # (rows, hidden), recomputed
            grad_w2.addmm_(grad_rows.t(), F.relu(pre))
            grad_pre = (grad_rows @ w2).mul_(pre > 0)
            grad_w1.addmm_(grad_pre.t(), rows)
            grad_b1 += grad_pre.sum(0)
            torch.mm(grad_pre, w1, out=grad_x[s:s + ROWS])
        return grad_x, grad_w1, grad_b1, grad_w2, grad_out.sum(0)


def chunked_feed_forward(x: torch.Tensor, linear1, linear2) -> torch.Tensor:
    """``linear2(relu(linear1(x)))`` for ``x`` (B, N, D) float32 -> (B, N, D)."""
    flat = x.reshape(-1, x.shape[-1]).contiguous()
    out = _ChunkedFeedForward.apply(flat, linear1.weight, linear1.bias, linear2.weight, linear2.bias)
    return out.reshape(x.shape)


def fused_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(D), padded keys hidden) v for (B, N, D) q, k, v and (B, N) bool ``pad``."""
    # (B, 1 head, N, D): the 4-d form reaches the CPU flash-attention kernel; 3-d falls back to matmuls
    q, k, v = (t.unsqueeze(1) for t in (q, k, v))
    return F.scaled_dot_product_attention(q, k, v, attn_mask=~pad[:, None, None, :]).squeeze(1)
