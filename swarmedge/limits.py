"""swarmedge's size limits in one place: model configs, batches, profiling runs.

No torch or numpy here (the CLI reads these bounds for its option ranges at import). Model
configs are checked from the config alone, by bounds and a parameter-count formula, so
``blocks=10**12`` or ``d_model=10**9`` is refused in one line before torch allocates a
tensor or the exporter starts unrolling a loop.
"""

import math
import os

# Upper bound of each integer field (the lower bounds live in the config classes). Each is
# far above any published or trained swarmedge model, and low enough that export finishes.
FIELD_MAX = {
    "swarmformer": {
        "vocab_size": 1_000_000,  # bert 30,522; the largest multilingual WordPiece/SentencePiece vocabularies ~250k
        "d_model": 4096,  # Small 128, Base 192
        "seq_len": 16_384,  # Base 768; cost is linear in L (local steps), quadratic in L / cluster_size
        "cluster_size": 16_384,  # at most seq_len anyway (seq_len is a multiple of it)
        "num_layers": 64,  # each layer is unrolled in the ONNX graph
        "T_local": 32,  # local steps per layer: unrolled too
        "num_classes": 10_000,
    },
    "boids": {
        "d_model": 1024,  # the paper's 3
        "nhead": 1,
        # Weight-shared or not, the exporter unrolls every step into the graph: measured on a
        # 2-core EPYC, 200 blocks took 130 s to export (0.65 s a block), so 10**12 never finished.
        "blocks": 100,
        "dim_feedforward": 65_536,  # the paper's 512
    },
}
FLOAT_FIELDS = {"boids": ("residual_scaling", "habitat_scaling")}
POSITIVE_FLOATS = {"habitat_scaling"}  # boid coordinates are scaled by it: 0 would stack every boid on one point
# Inputs at a time: Classifier(batch_size=...) preprocesses this many raw inputs at once (scores
# are computed one input at a time regardless); profile --batch runs this many per call.
MAX_BATCH = 4096
# profile --warmup / --repeat: at 0.2 ms a run, 100,000 repeats take 20 s; at 50 ms, 80 minutes.
MAX_WARMUP = 10_000
MAX_REPEAT = 100_000
# Digits in one array (run --file, classify_images): MNIST's 70,000 fit; the float32 copy of
# 100,000 is 314 MB, about what a Raspberry Pi with 1 GB can spare.
MAX_DIGITS = 100_000
BYTES_PER_PARAM = 4  # float32 weights; training adds a gradient and two AdamW moments (TRAIN_BYTES_PER_PARAM)
TRAIN_BYTES_PER_PARAM = 16
_SIZE_FIELDS = {"swarmformer": "d_model, vocab_size or num_layers",
                "boids": "d_model or dim_feedforward, or set recurrent (one weight-shared block)"}


def parameter_count(model_type: str, config: dict) -> int:
    """Parameters of the model ``config`` describes, from the config alone (no torch).

    ``config`` is a complete config dict (the dataclass's ``to_dict()``); the result equals
    ``sum(p.numel() for p in build(model_type, config).parameters())``.
    """
    if model_type == "swarmformer":
        d = config["d_model"]
        # per layer: local step (mlp 2 x Linear(d, d), gate 2d->d->d) 5d^2+4d, cluster
        # attention (q, k, v) 3d^2+3d, broadcast (Linear(d, d) + gate) 4d^2+3d
        per_layer = 12 * d * d + 10 * d
        classifier = d * config["num_classes"] + config["num_classes"]
        return config["vocab_size"] * d + config["num_layers"] * per_layer + classifier
    d, f = config["d_model"], config["dim_feedforward"]
    per_block = 4 * d * d + 5 * d + 2 * d * f + f  # in_proj 3d^2+3d, out_proj d^2+d, linear1 df+f, linear2 fd+d
    return per_block * (1 if config["recurrent"] else config["blocks"])


def available_memory() -> int | None:
    """Bytes of memory this machine can still give out (``MemAvailable`` in /proc/meminfo,
    else free physical pages), or None where neither can be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the kernel reports kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_bounds(model_type: str, config: dict) -> None:
    """Raise ValueError naming the first field of ``config`` outside its bound (see ``FIELD_MAX``),
    or a float field that is NaN or infinite. Fields absent from ``config`` are not checked."""
    for key, top in FIELD_MAX[model_type].items():
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > top:
            raise ValueError(f"{model_type} config key {key!r} is {value:,}; at most {top:,} is supported")
    for key in FLOAT_FIELDS.get(model_type, ()):
        value = config.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ValueError(f"{model_type} config key {key!r} must be a finite number, got {value!r}")
            if key in POSITIVE_FLOATS and value <= 0:
                raise ValueError(f"{model_type} config key {key!r} must be > 0, got {value!r}")


def check_memory(model_type: str, config: dict, bytes_per_param: int = BYTES_PER_PARAM,
                 available: int | None = None) -> None:
    """Raise ValueError when the weights of ``config``'s model (``bytes_per_param`` each: 4 to
    build or export, ``TRAIN_BYTES_PER_PARAM`` to train) would not fit in ``available`` bytes
    [default: ``available_memory()``; not checked where that is unknown]."""
    available = available_memory() if available is None else available
    if available is None:
        return
    params = parameter_count(model_type, config)
    need = params * bytes_per_param
    if need > available:
        raise ValueError(f"{model_type} config makes {params:,} parameters ({need / 2**30:,.1f} GiB at "
                         f"{bytes_per_param} bytes each), more than the {available / 2**30:,.1f} GiB of memory "
                         f"available; choose a smaller {_SIZE_FIELDS[model_type]}")
