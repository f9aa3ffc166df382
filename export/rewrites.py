"""Exact algebraic rewrites of SwarmFormer for inference, applied before the ONNX export.

Each rewrite computes the same function as the trained model (in eval mode, where dropout
is the identity) with less work or fewer, larger matrix products; the export's parity
check compares the rewritten graph against the *original* PyTorch model. Names:

- ``split-gates``: the broadcast's ``gate(cat[x, t]) = x @ Wx.T + t @ Wt.T + bias`` - two
  products, no concatenated (B, L, 2D) tensor, and the t half can then go per cluster. The
  local step's gate keeps its concatenation: one product over [x | update] ran 5% faster at
  Small than two products and their sum (and tied at Base).
- ``per-cluster``: the broadcast step's linear (and its half of the split gate) act on the
  K cluster states before they are copied to the S tokens of each cluster, not on the
  L = K*S copies: 1/S of the work. Needs ``split-gates``. The final mean over the tokens is
  taken per cluster and then over the clusters (equal-sized, so the same mean), which
  onnxruntime reduces 3x faster than one mean over the sequence axis.
- ``merge-matmuls``: the clusters feed query, key and value through one product, and the
  broadcast's linear and its half of the gate (folded through it) through another. Fewer,
  wider MatMuls mean fewer int8 activation quantizations. Needs ``split-gates``. The
  token-level products of the local step are left apart: merged (x into [MLP | gate], the
  hidden state into [update | gate]) they tied at Small and ran 6% slower at Base, where
  splitting the wide outputs costs more than the saved quantizations.
- ``neighbour-slices``: the circular neighbour average as three slices of one wrapped copy
  ``[x_L, x_1 … x_L, x_1]`` with constant bounds, instead of two ``torch.roll``s, whose
  export computes indices at run time (Mod, Shape, Concat of many tiny tensors); its
  division by 3 moves into the weights of the MLP's first linear.

The boid model's block (names for ``boids``):

- ``fold-scales``: the residual scaling (0.1) and the attention's 1/sqrt(d) move into the
  weights of the linears they multiply.
- ``fold-value-output``: value and output projections fold into one matrix,
  ``softmax(s) @ (x Wv + bv) Wo + bo == softmax(s) @ (x Wv Wo + bv Wo + bo)`` because
  every row of softmax weights sums to 1; it joins the query/key product.
- ``homogeneous``: the boids carry a constant extra coordinate 1, so every bias becomes one
  more row of its weight matrix (and the feed-forward's hidden layer carries the 1 on
  through its ReLU): no bias additions, the largest being over the 512-wide hidden layer.
  The hidden layer is then padded with zero units to a multiple of 16 (``KERNEL_WIDTH``).
  Needs both folds.
- ``mask-in-keys``: padded boids carry a further coordinate m = 1 that the key projection
  turns into a score of -1e9 (the query's extra coordinate is the constant 1), so the
  masking rides in the score product instead of a Where over every (N, N) score matrix.
  Needs ``homogeneous``.
Not kept: ``score-floor`` (raising scores more than 60 below their row's largest before the
softmax, against exp into denormals). On 300 MNIST test digits it made the int8 boid graph 13%
slower at batch 1 on one thread (0.87x mean time ratio without it), and onnxruntime's
flush-to-zero option changed nothing measurable: the masked keys' -1e9 gives exact zeros, and
real scores did not reach the denormal range often enough to pay for three nodes per step.
"""

import torch
from torch import nn
from torch.nn import functional as F

MASKED = -1e9  # exp(-1e9 - max) is exactly 0 in float32, as exp(-inf) is
# The width the CPU MatMul kernels work in (MLAS: 16 floats). 150 boids x 5 @ 5 x 513 took
# 23.4 us in onnxruntime here, 13.5 us at 512 and 11.9 us at 528: the homogeneous hidden
# layer (512 units + the carried 1) is padded to a multiple of it.
KERNEL_WIDTH = 16

# per model family, in the order the benchmark adds them one by one
REWRITES = {
    "swarmformer": ("neighbour-slices", "split-gates", "per-cluster", "merge-matmuls"),
    "boids": ("fold-scales", "fold-value-output", "homogeneous", "mask-in-keys"),
}
ALL = tuple(n for names in REWRITES.values() for n in names)


def rewrite(model: nn.Module, names=ALL) -> nn.Module:
    """An inference-only copy of ``model`` with those of ``names`` that apply to its family
    (recorded in its ``rewrites`` attribute); the model itself when none apply."""
    from swarmedge.models.boids import BoidSwarm
    from swarmedge.models.swarmformer import SwarmFormer

    unknown = set(names) - set(ALL)
    if unknown:
        raise ValueError(f"unknown rewrites {sorted(unknown)}; known: {', '.join(ALL)}")
    family = "swarmformer" if isinstance(model, SwarmFormer) else "boids" if isinstance(model, BoidSwarm) else None
    names = tuple(n for n in REWRITES.get(family, ()) if n in names)
    for needs, needed in (("per-cluster", ("split-gates",)), ("merge-matmuls", ("split-gates",)),
                          ("homogeneous", ("fold-scales", "fold-value-output")),
                          ("mask-in-keys", ("homogeneous",))):
        if needs in names and not set(needed) <= set(names):
            raise ValueError(f"{needs} needs {' and '.join(needed)}")
    if not names:
        return model
    rewritten = (_RewrittenSwarmFormer if family == "swarmformer" else _RewrittenBoids)(model.eval(), names)
    rewritten.rewrites = names
    return rewritten.eval()


def _w(linear: nn.Linear) -> tuple[torch.Tensor, torch.Tensor]:
    return linear.weight.detach().double(), linear.bias.detach().double()


def _param(t: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(t.float().contiguous(), requires_grad=False)


def _avg3_rolls(x: torch.Tensor) -> torch.Tensor:
    # Each token with its circular neighbours along the sequence, as the reference computes it.
    return (torch.roll(x, 1, dims=1) + x + torch.roll(x, -1, dims=1)) / 3.0


def _sum3_slices(x: torch.Tensor) -> torch.Tensor:
    wrapped = torch.cat([x[:, -1:], x, x[:, :1]], dim=1)  # (B, L + 2, D)
    return wrapped[:, :-2] + wrapped[:, 1:-1] + wrapped[:, 2:]


class _Local(nn.Module):
    """One local swarm step: x + gate * (mlp(avg3(x)) - x)."""

    def __init__(self, m, names):
        super().__init__()
        (w1, b1), (w2, b2) = _w(m.mlp[0]), _w(m.mlp[3])
        (g1, c1), (g2, c2) = _w(m.gate_net[0]), _w(m.gate_net[2])
        self.avg3 = _avg3_rolls
        if "neighbour-slices" in names:  # a sum of slices; the average's 1/3 rides on the weights
            w1, self.avg3 = w1 / 3.0, _sum3_slices
        self.mlp1, self.mlp2 = _param(w1.T), _param(w2.T)
        self.b_mlp1, self.b_mlp2 = _param(b1), _param(b2)
        self.g1, self.c1, self.g2, self.c2 = _param(g1.T), _param(c1), _param(g2.T), _param(c2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        update = F.gelu(self.avg3(x) @ self.mlp1 + self.b_mlp1) @ self.mlp2 + self.b_mlp2
        gate = torch.sigmoid(F.gelu(torch.cat([x, update], dim=-1) @ self.g1 + self.c1) @ self.g2 + self.c2)
        return x + gate * (update - x)


class _Layer(nn.Module):
    """Local steps, cluster attention, gated broadcast - rewritten."""

    def __init__(self, layer, names):
        super().__init__()
        d = layer.global_attn.query.in_features
        self.s, self.t_local, self.scale = layer.cluster_size, layer.T_local, layer.global_attn.scale
        self.per_cluster, self.split = "per-cluster" in names, "split-gates" in names
        self.merge = "merge-matmuls" in names
        self.local = _Local(layer.local_agg, names)
        att, bc = layer.global_attn, layer.broadcast
        (wq, bq), (wk, bk), (wv, bv) = _w(att.query), _w(att.key), _w(att.value)
        (wl, bl) = _w(bc.linear)
        (g1, c1), (g2, c2) = _w(bc.gate_net[0]), _w(bc.gate_net[2])
        gx, gt = g1[:, :d], g1[:, d:]
        if self.merge:
            self.w_qkv, self.b_qkv = _param(torch.cat([wq, wk, wv]).T), _param(torch.cat([bq, bk, bv]))
        else:
            self.wq, self.wk, self.wv = _param(wq.T), _param(wk.T), _param(wv.T)
            self.bq, self.bk, self.bv = _param(bq), _param(bk), _param(bv)
        if self.merge and self.per_cluster:  # clusters -> [transformed | its gate half (+ gate bias)]
            self.w_t, self.b_t = _param(torch.cat([wl, gt @ wl]).T), _param(torch.cat([bl, gt @ bl + c1]))
        else:
            self.wl, self.bl = _param(wl.T), _param(bl)
        if self.split:
            self.gx, self.gt = _param(gx.T), _param(gt.T)
        else:
            self.g1 = _param(g1.T)
        self.c1, self.g2, self.c2 = _param(c1), _param(g2.T), _param(c2)

    def _attention(self, c: torch.Tensor) -> torch.Tensor:
        d = c.shape[-1]
        if self.merge:
            qkv = c @ self.w_qkv + self.b_qkv
            q, k, v = qkv[..., :d], qkv[..., d:2 * d], qkv[..., 2 * d:]
        else:
            q, k, v = c @ self.wq + self.bq, c @ self.wk + self.bk, c @ self.wv + self.bv
        return F.softmax(q @ k.transpose(-2, -1) * self.scale, dim=-1) @ v  # (B, K, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.t_local):
            x = self.local(x)
        tokens = x.unflatten(1, (-1, self.s))  # (B, K, S, D)
        c = self._attention(tokens.mean(dim=2))  # (B, K, D)
        d = x.shape[-1]
        if self.per_cluster:
            if self.merge:
                both = c @ self.w_t + self.b_t
                t, t_gate = both[..., :d], both[..., d:]
            else:
                t = c @ self.wl + self.bl
                t_gate = t @ self.gt + self.c1  # the gate's bias added per cluster, not per token
            t, t_gate = t.unsqueeze(2), t_gate.unsqueeze(2)  # (B, K, 1, D): broadcast over S
            pre = tokens @ self.gx + t_gate
        else:
            t = (c.unsqueeze(2).expand(-1, -1, self.s, -1) @ self.wl + self.bl)  # (B, K, S, D)
            pre = (tokens @ self.gx + t @ self.gt if self.split
                   else torch.cat([tokens, t], dim=-1) @ self.g1) + self.c1
        gate = torch.sigmoid(F.gelu(pre) @ self.g2 + self.c2)
        return (tokens + gate * t).flatten(1, 2)


class _RewrittenSwarmFormer(nn.Module):
    def __init__(self, model, names):
        super().__init__()
        self.config = model.config
        self.embedding = model.embedding
        self.layers = nn.ModuleList(_Layer(layer, names) for layer in model.layers)
        self.classifier = model.classifier
        self.s, self.per_cluster = model.config.cluster_size, "per-cluster" in names

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.embedding(input_ids)
        for layer in self.layers:
            x = layer(x)
        if self.per_cluster:  # clusters are equal-sized: the mean of their means is the mean
            return self.classifier(x.unflatten(1, (-1, self.s)).mean(dim=2).mean(dim=1))
        return self.classifier(x.mean(dim=1))


class _BoidBlock(nn.Module):
    """x + s * attention(x), then x + s * ffn(x), with the scalings and projections folded."""

    def __init__(self, block, names):
        super().__init__()
        att, s = block.self_attn, block.scaling
        d = att.out_proj.in_features
        w_in, b_in = att.in_proj_weight.detach().double(), att.in_proj_bias.detach().double()
        (wq, wk, wv), (bq, bk, bv) = w_in.split(d), b_in.split(d)
        (wo, bo), (w1, b1), (w2, b2) = _w(att.out_proj), _w(block.linear1), _w(block.linear2)
        self.fold_vo = "fold-value-output" in names
        self.scale, self.s = (1.0, 1.0) if "fold-scales" in names else (d**-0.5, s)
        qs, os_ = (d**-0.5, s) if "fold-scales" in names else (1.0, 1.0)
        if self.fold_vo:  # the output projection (and s) ride on the value rows
            wv, bv = os_ * wo @ wv, os_ * (wo @ bv + bo)
        else:
            self.wo, self.bo = _param(os_ * wo.T), _param(os_ * bo)
        self.w_in = _param(torch.cat([qs * wq, wk, wv]).T)
        self.b_in = _param(torch.cat([qs * bq, bk, bv]))
        self.w1, self.b1 = _param(w1.T), _param(b1)
        self.w2, self.b2 = _param(os_ * w2.T), _param(os_ * b2)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        q, k, v = (x @ self.w_in + self.b_in).chunk(3, dim=-1)
        scores = q @ k.transpose(1, 2)
        if self.scale != 1.0:
            scores = scores * self.scale
        scores = scores.masked_fill(pad.unsqueeze(1), float("-inf"))
        attended = F.softmax(scores, dim=-1) @ v
        if not self.fold_vo:
            attended = attended @ self.wo + self.bo
        x = x + (attended if self.s == 1.0 else self.s * attended)
        ffn = F.relu(x @ self.w1 + self.b1) @ self.w2 + self.b2
        return x + (ffn if self.s == 1.0 else self.s * ffn)


class _HomogeneousBoidBlock(nn.Module):
    """The folded block acting on z = [x, 1] (or [x, 1, m]): biases are rows of the weights."""

    def __init__(self, block, mask_in_keys: bool):
        super().__init__()
        att, s = block.self_attn, block.scaling
        d, f = att.out_proj.in_features, block.linear1.out_features
        (wq, wk, wv), (bq, bk, bv) = att.in_proj_weight.detach().double().split(d), \
            att.in_proj_bias.detach().double().split(d)
        (wo, bo), (w1, b1), (w2, b2) = _w(att.out_proj), _w(block.linear1), _w(block.linear2)
        c, nq = d + 1 + mask_in_keys, d + mask_in_keys  # state and query/key widths
        q, k, v = (torch.zeros(c, nq, dtype=torch.float64), torch.zeros(c, nq, dtype=torch.float64),
                   torch.zeros(c, c, dtype=torch.float64))
        q[:d, :d], q[d, :d] = d**-0.5 * wq.T, d**-0.5 * bq
        k[:d, :d], k[d, :d] = wk.T, bk
        v[:d, :d], v[d, :d] = (s * wo @ wv).T, s * (wo @ bv + bo)  # extra columns 0: the 1 and m stay
        if mask_in_keys:  # score += 1 * (MASKED * m_j): padded keys drop out of the softmax
            q[d, d], k[d + 1, d] = 1.0, MASKED
        width = -(-(f + 1) // KERNEL_WIDTH) * KERNEL_WIDTH  # zero units pad it: ReLU(0) adds nothing
        hidden = torch.zeros(c, width, dtype=torch.float64)
        hidden[:d, :f], hidden[d, :f], hidden[d, f] = w1.T, b1, 1.0  # ReLU(1) carries the 1 on
        out = torch.zeros(width, c, dtype=torch.float64)
        out[:f, :d], out[f, :d] = s * w2.T, s * b2
        self.nq, self.mask_in_keys = nq, mask_in_keys
        self.w_in, self.w1, self.w2 = _param(torch.cat([q, k, v], dim=1)), _param(hidden), _param(out)

    def forward(self, z: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        qkv = z @ self.w_in
        q, k, v = qkv[..., : self.nq], qkv[..., self.nq: 2 * self.nq], qkv[..., 2 * self.nq:]
        scores = q @ k.transpose(1, 2)
        if not self.mask_in_keys:
            scores = scores.masked_fill(pad.unsqueeze(1), float("-inf"))
        z = z + F.softmax(scores, dim=-1) @ v
        return z + F.relu(z @ self.w1) @ self.w2


class _RewrittenBoids(nn.Module):
    def __init__(self, model, names):
        super().__init__()
        self.config = model.config
        self.homogeneous = "homogeneous" in names
        self.mask_in_keys = "mask-in-keys" in names
        self.blocks = nn.ModuleList(_HomogeneousBoidBlock(b, self.mask_in_keys) if self.homogeneous
                                    else _BoidBlock(b, names) for b in model.encoder_layers)
        self.register_buffer("vertices", model.vertices.clone(), persistent=False)

    def forward(self, boids: torch.Tensor, lengths: torch.Tensor):
        from swarmedge.models.boids import BoidSwarm

        if not self.homogeneous:
            return BoidSwarm.forward(self, boids, lengths)  # same bookkeeping, rewritten blocks
        d, n = self.config.d_model, boids.shape[1]
        x = F.pad(F.pad(boids, (0, d - 2)), (0, 1), value=1.0)  # (B, N, D + 1): [x, 1]
        valid = torch.arange(n, device=boids.device).unsqueeze(0) < lengths.unsqueeze(1)
        if self.mask_in_keys:  # [x, 1, m], m = 1 for padding
            x = torch.cat([x, (~valid).to(x.dtype).unsqueeze(2)], dim=2)
        trajectory = [x]
        for block in self.steps():
            x = block(x, ~valid)
            trajectory.append(x)
        weights = valid.to(x.dtype).unsqueeze(2)
        mean = (x[..., :d] * weights).sum(dim=1) / weights.sum(dim=1)
        scores = -((mean[:, None, :3] - self.vertices) ** 2).sum(dim=-1)
        return scores, mean, torch.stack(trajectory, dim=1)[..., :d]

    def steps(self):
        for i in range(self.config.blocks):
            yield self.blocks[0 if self.config.recurrent else i]
