"""The boid swarm transformer ("Transformer as swarm", D. Varga).

Each foreground pixel of a digit is a boid in a ``d_model``-dimensional space. One
transformer block without layer norm or dropout moves the swarm: single-head attention is
flocking, the feed-forward net is each boid's own motion, both residual branches scaled
by ``residual_scaling``. The block is applied ``blocks`` times (weight-shared when
``recurrent``), and where the swarm settles is the class: training pulls every boid of
class c to ``habitat_scaling * (2 * bits(c) - 1)``, and the reference predicts the vertex
of the unit cube {0,1}^3 nearest to the swarm's mean position.
Shapes: B batch, N boids (padded), D = d_model, S = blocks.
"""

from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from swarmedge.models.boids_training import chunked_feed_forward, fused_attention


@dataclass(frozen=True)
class BoidsConfig:
    d_model: int = 3  # the 2-d pixel coordinates are zero-padded to this
    nhead: int = 1
    blocks: int = 10  # steps of the swarm simulation
    recurrent: bool = True  # one weight-shared block applied `blocks` times
    dim_feedforward: int = 512
    residual_scaling: float = 0.1
    habitat_scaling: float = 10.0  # boids live in (-h, h); class targets sit at +-h
    digits: tuple[int, ...] = field(default=(5, 6))  # MNIST digit of each class, in class order

    def __post_init__(self) -> None:
        object.__setattr__(self, "digits", tuple(int(d) for d in self.digits))
        if self.d_model < 3:
            raise ValueError(f"d_model must be >= 3 (three bits encode the class), got {self.d_model}")
        if self.nhead != 1:
            raise ValueError(f"only single-head attention is supported, got nhead={self.nhead}")
        if self.blocks < 1 or self.dim_feedforward < 1:
            raise ValueError("blocks and dim_feedforward must be positive")
        if not 2 <= len(self.digits) <= 8 or len(set(self.digits)) != len(self.digits):
            raise ValueError(f"digits must be 2 to 8 distinct classes, got {self.digits}")
        if any(not 0 <= d <= 9 for d in self.digits):
            raise ValueError(f"digits must be MNIST digits 0-9, got {self.digits}")

    @property
    def num_classes(self) -> int:
        return len(self.digits)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["digits"] = list(self.digits)
        return d


PRESETS = {
    "binary": BoidsConfig(),  # the paper's 5-vs-6 task, 10 recurrent steps in 3-d
    "eight": BoidsConfig(digits=tuple(range(8))),  # digits 0-7 on the 8 cube vertices
}


def class_bits(num_classes: int) -> torch.Tensor:
    """(C, 3) float: the 3-bit code of each class, most significant bit first."""
    c = torch.arange(num_classes).unsqueeze(1)
    return ((c >> torch.tensor([2, 1, 0])) & 1).float()


def _training_step(module: nn.Module) -> bool:
    # Evaluation, export (eval mode) and no_grad inference keep the plain arithmetic below.
    return module.training and torch.is_grad_enabled()


class SwarmSelfAttention(nn.Module):
    """Single-head attention with ``nn.MultiheadAttention``'s parameter layout."""

    def __init__(self, d: int):
        super().__init__()
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d, d))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d))
        self.out_proj = nn.Linear(d, d)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)  # (B, N, D) each
        if _training_step(self):  # the same maths, fused (boids_training.py)
            return self.out_proj(fused_attention(q, k, v, pad))
        scores = q @ k.transpose(1, 2) * x.shape[-1] ** -0.5  # (B, N, N)
        scores = scores.masked_fill(pad.unsqueeze(1), float("-inf"))  # padded boids are not seen
        return self.out_proj(F.softmax(scores, dim=-1) @ v)


class SwarmBlock(nn.Module):
    """x + s * attention(x), then x + s * ffn(x); no layer norm, no dropout."""

    def __init__(self, config: BoidsConfig):
        super().__init__()
        self.self_attn = SwarmSelfAttention(config.d_model)
        self.linear1 = nn.Linear(config.d_model, config.dim_feedforward)
        self.linear2 = nn.Linear(config.dim_feedforward, config.d_model)
        self.scaling = config.residual_scaling

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        x = x + self.scaling * self.self_attn(x, pad)
        if _training_step(self):  # the same maths, in cache-sized chunks (boids_training.py)
            return x + self.scaling * chunked_feed_forward(x, self.linear1, self.linear2)
        return x + self.scaling * self.linear2(F.relu(self.linear1(x)))


class BoidSwarm(nn.Module):
    """``boids`` (B, N, 2) float and ``lengths`` (B,) int64 ->
    ``scores`` (B, C): minus the squared distance of the mean position to each class's vertex,
    ``mean_position`` (B, D) and ``trajectory`` (B, S + 1, N, D): every boid after every block.
    """

    def __init__(self, config: BoidsConfig):
        super().__init__()
        self.config = config
        distinct = 1 if config.recurrent else config.blocks
        self.encoder_layers = nn.ModuleList(SwarmBlock(config) for _ in range(distinct))
        self.register_buffer("vertices", class_bits(config.num_classes), persistent=False)

    def steps(self):
        """The block applied at each step, in order."""
        for i in range(self.config.blocks):
            yield self.encoder_layers[0 if self.config.recurrent else i]

    def forward(self, boids: torch.Tensor, lengths: torch.Tensor):
        b, n, _ = boids.shape
        x = F.pad(boids, (0, self.config.d_model - 2))  # (B, N, D)
        valid = torch.arange(n, device=boids.device).unsqueeze(0) < lengths.unsqueeze(1)  # (B, N)
        trajectory = [x]
        for block in self.steps():
            x = block(x, ~valid)
            trajectory.append(x)
        weights = valid.to(x.dtype).unsqueeze(2)  # (B, N, 1)
        mean = (x * weights).sum(dim=1) / weights.sum(dim=1)  # (B, D)
        scores = -((mean[:, None, :3] - self.vertices) ** 2).sum(dim=-1)  # (B, C)
        return scores, mean, torch.stack(trajectory, dim=1)

    def targets(self, labels: torch.Tensor) -> torch.Tensor:
        """(B, D) training target of each class: +-habitat_scaling on the first 3 axes, 0 elsewhere."""
        t = self.config.habitat_scaling * (2 * self.vertices[labels] - 1)  # (B, 3)
        return F.pad(t, (0, self.config.d_model - 3))
