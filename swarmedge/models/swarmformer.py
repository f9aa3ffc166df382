"""SwarmFormer (takara-ai, 2025): local swarm steps, cluster attention, gated broadcast.

Faithful to the reference ``SwarmFormerModel`` (takara-ai/SwarmFormer): module names
follow its state dict, so the published Small/Base checkpoints load with strict keys.
Shapes: B batch, L tokens, K = L / cluster_size clusters, D = d_model.
"""

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class SwarmFormerConfig:
    vocab_size: int = 30522  # bert-base-uncased WordPiece, as the published checkpoints
    d_model: int = 128
    seq_len: int = 256  # inputs are padded/truncated to this many tokens
    cluster_size: int = 8  # tokens pooled into one cluster; L must be a multiple
    num_layers: int = 2
    T_local: int = 3  # local swarm steps per layer
    num_classes: int = 2  # the reference's classifier is fixed at 2 (sentiment)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "d_model", "seq_len", "cluster_size", "num_layers", "num_classes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.T_local < 0:
            raise ValueError(f"T_local must be >= 0, got {self.T_local}")
        if self.seq_len % self.cluster_size:
            raise ValueError(f"seq_len {self.seq_len} is not a multiple of cluster_size {self.cluster_size}")

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS = {
    "small": SwarmFormerConfig(d_model=128, seq_len=256, cluster_size=8),  # 4,302,850 params
    "base": SwarmFormerConfig(d_model=192, seq_len=768, cluster_size=4),  # 6,749,186 params
}


def _gate_net(d: int) -> nn.Sequential:
    # Indices 0 and 2 carry weights, as in the reference state dict.
    return nn.Sequential(nn.Linear(2 * d, d), nn.GELU(), nn.Linear(d, d), nn.Sigmoid())


class TokenEmbedding(nn.Module):
    def __init__(self, vocab_size: int, d: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embed(ids)


class LocalSwarmAggregator(nn.Module):
    """One local step: every token averages with its circular neighbours, gated."""

    def __init__(self, d: int, dropout: float = 0.3):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.mlp = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Dropout(dropout), nn.Linear(d, d))
        self.gate_net = _gate_net(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(x)  # (B, L, D)
        neighbours = (torch.roll(x, 1, dims=1) + x + torch.roll(x, -1, dims=1)) / 3.0
        update = self.mlp(neighbours)  # (B, L, D)
        gate = self.gate_net(torch.cat([x, update], dim=-1))  # (B, L, D)
        return x + gate * (update - x)


class GlobalClusterAttention(nn.Module):
    """Single-head attention among cluster means, scaled by sqrt(D)."""

    def __init__(self, d: int, dropout: float = 0.3):
        super().__init__()
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(d, d)
        self.value = nn.Linear(d, d)
        self.scale = d**-0.5
        self.dropout = nn.Dropout(dropout)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        scores = self.query(c) @ self.key(c).transpose(-2, -1) * self.scale  # (B, K, K)
        attn = self.dropout(F.softmax(scores, dim=-1))
        return attn @ self.value(c)  # (B, K, D)


class BroadcastUpdater(nn.Module):
    """Adds each cluster's transformed state to its tokens, through a gate."""

    def __init__(self, d: int, dropout: float = 0.1):
        super().__init__()
        self.linear = nn.Linear(d, d)
        self.dropout = nn.Dropout(dropout)
        self.gate_net = _gate_net(d)

    def forward(self, x: torch.Tensor, c: torch.Tensor, cluster_size: int) -> torch.Tensor:
        # (B, K, D) -> (B, K, S, D) -> (B, L, D); expand+flatten keeps L symbolic in ONNX.
        expanded = c.unsqueeze(2).expand(-1, -1, cluster_size, -1).flatten(1, 2)
        transformed = self.linear(self.dropout(expanded))  # (B, L, D)
        gate = self.gate_net(torch.cat([x, transformed], dim=-1))
        return x + gate * transformed  # additive, unlike the local step's interpolation


class SwarmFormerLayer(nn.Module):
    def __init__(self, d: int, cluster_size: int, T_local: int):
        super().__init__()
        self.local_agg = LocalSwarmAggregator(d)  # one module reused for all T_local steps
        self.global_attn = GlobalClusterAttention(d)
        self.broadcast = BroadcastUpdater(d)
        self.cluster_size = cluster_size
        self.T_local = T_local

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.T_local):
            x = self.local_agg(x)
        clusters = x.unflatten(1, (-1, self.cluster_size)).mean(dim=2)  # (B, K, D)
        return self.broadcast(x, self.global_attn(clusters), self.cluster_size)


class SwarmFormer(nn.Module):
    """Text classifier: ``input_ids`` (B, L) int64 -> ``logits`` (B, num_classes).

    L must be a positive multiple of ``cluster_size``; the reference pads to ``seq_len``
    with id 0 and mean-pools over every position, padding included.
    """

    def __init__(self, config: SwarmFormerConfig):
        super().__init__()
        self.config = config
        d = config.d_model
        self.embedding = TokenEmbedding(config.vocab_size, d)
        self.dropout = nn.Dropout(0.4)
        self.layers = nn.ModuleList(
            SwarmFormerLayer(d, config.cluster_size, config.T_local) for _ in range(config.num_layers)
        )
        self.classifier = nn.Linear(d, config.num_classes)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.embedding(input_ids))  # (B, L, D)
        for layer in self.layers:
            x = layer(x)
        return self.classifier(self.dropout(x.mean(dim=1)))  # (B, C)
