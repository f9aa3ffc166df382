"""Multiply-accumulates per inference, from the bundle's config (no onnx needed on the device)."""


def swarmformer_macs(config: dict, length: int) -> int:
    """MACs of one sequence of ``length`` tokens through SwarmFormer."""
    d, s, t = config["d_model"], config["cluster_size"], config["T_local"]
    k = length // s
    local = t * length * 5 * d * d  # mlp (2 d x d) + gate (2d x d, d x d), per step and token
    attention = 3 * k * d * d + 2 * k * k * d  # q, k, v projections; scores; weighted values
    broadcast = length * 4 * d * d  # linear (d x d) + gate (2d x d, d x d) per token
    return config["num_layers"] * (local + attention + broadcast) + d * config["num_classes"]


def boids_macs(config: dict, boids: int) -> int:
    """MACs of one swarm of ``boids`` boids through all blocks."""
    d, f, n = config["d_model"], config["dim_feedforward"], boids
    per_step = n * 3 * d * d + 2 * n * n * d + n * d * d + 2 * n * d * f
    return config["blocks"] * per_step


def macs_per_sample(manifest: dict, length: int) -> int:
    if manifest["model_type"] == "swarmformer":
        return swarmformer_macs(manifest["config"], length)
    return boids_macs(manifest["config"], length)
