"""Pictures of the swarm: boids moving block by block (GIF/MP4), and the learned vector fields."""

import shutil
from pathlib import Path

import numpy as np

from swarmedge.errors import InputError, require_extra


def trajectories(model: Path, image: np.ndarray) -> tuple[dict[str, np.ndarray], dict]:
    """{variant: (S+1, N, D) positions} for one image, and the model's config.

    A bundle gives fp32 and int8 (onnxruntime); a checkpoint gives PyTorch fp32."""
    from swarmedge.runtimes.images import images_to_boids

    model = Path(model)
    if model.is_dir():
        from swarmedge.runtimes import Bundle

        bundle = Bundle.open(model)
        manifest = bundle.manifest
        if manifest["model_type"] != "boids":
            raise InputError(f"{model} is a {manifest['model_type']} bundle; pictures of the swarm need a boid model")
        pre = manifest["preprocessing"]
        boids, lengths = images_to_boids(image[None], pre["threshold"], pre["habitat_scaling"])
        out = {}
        for precision in bundle.precisions:
            traj = bundle.session(precision).run(["trajectory"], {"boids": boids, "lengths": lengths})[0]
            out[f"ONNX {precision}"] = traj[0, :, : lengths[0]]
        return out, manifest["config"]
    import torch

    from swarmedge.checkpoint import build_model, load_checkpoint

    ckpt = load_checkpoint(model)
    if ckpt["model_type"] != "boids":
        raise InputError(f"{model} is a {ckpt['model_type']} model; pictures of the swarm need a boid model")
    pre = ckpt["preprocessing"]
    boids, lengths = images_to_boids(image[None], pre["threshold"], pre["habitat_scaling"])
    with torch.no_grad():
        traj = build_model(ckpt)(torch.from_numpy(boids), torch.from_numpy(lengths))[2].numpy()
    return {"PyTorch fp32": traj[0, :, : lengths[0]]}, ckpt["config"]


def class_targets(config: dict) -> np.ndarray:
    """(C, 3) training targets: habitat * (2 * bits(c) - 1)."""
    c = np.arange(len(config["digits"]))[:, None]
    bits = (c >> np.array([2, 1, 0])) & 1
    return config["habitat_scaling"] * (2 * bits - 1.0)


def swarm_animation(model: Path, image: np.ndarray, out: Path, fps: int = 3) -> Path:
    """Animate the boids of ``image`` block by block, one 3-D panel per variant, targets marked."""
    from swarmedge.plots import pyplot

    plt = pyplot()
    from matplotlib import animation

    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise InputError(f"{out}: write a .gif (or .mp4 where ffmpeg is installed)")
    if suffix == ".mp4" and shutil.which("ffmpeg") is None:
        raise InputError("writing .mp4 needs ffmpeg (apt-get install ffmpeg); or write a .gif")
    output_folder(out)
    trajs, config = trajectories(model, image)
    targets = class_targets(config)
    steps = next(iter(trajs.values())).shape[0]
    fig = plt.figure(figsize=(4.2 * len(trajs), 4.4))
    axes = [fig.add_subplot(1, len(trajs), i + 1, projection="3d") for i in range(len(trajs))]
    lim = config["habitat_scaling"] * 1.4
    scatters = []
    for ax, (name, traj) in zip(axes, trajs.items()):
        ax.set_title(name)
        ax.set_xlim(-lim, lim), ax.set_ylim(-lim, lim), ax.set_zlim(-lim, lim)
        for label, t in zip(config["digits"], targets):
            ax.scatter(*t, marker="*", s=160, color="crimson")
            ax.text(*t, f" {label}", color="crimson")
        # the image reads upright: column -> x, -row -> y
        p = traj[0]
        scatters.append(ax.scatter(p[:, 1], -p[:, 0], p[:, 2], s=6, c=np.arange(len(p)), cmap="viridis"))
    caption = fig.suptitle("")

    def frame(k):
        for sc, traj in zip(scatters, trajs.values()):
            p = traj[k]
            sc._offsets3d = (p[:, 1], -p[:, 0], p[:, 2])
        caption.set_text(f"after block {k} of {steps - 1}" if k else "input: one boid per bright pixel")
        return scatters

    anim = animation.FuncAnimation(fig, frame, frames=steps, interval=1000 // fps)
    tmp = out.with_name(f".{out.name}.tmp{suffix}")  # written whole, then renamed: no half GIF
    try:
        writer = animation.PillowWriter(fps=fps) if suffix == ".gif" else animation.FFMpegWriter(fps=fps)
        anim.save(str(tmp), writer=writer)
        output_folder(out)  # again: the folder or a bundle around it may have appeared meanwhile
        try:
            tmp.replace(out)
        except IsADirectoryError:
            raise InputError(f"{out} is a folder; give a file path inside it or another name") from None
    finally:
        tmp.unlink(missing_ok=True)
        plt.close(fig)
    return out


def vector_fields(model: Path, out: Path, grid: int = 17, z: float = 0.0) -> Path:
    """Quiver plots of the first block on the plane z = ``z``: where attention's query, key and
    value maps send a boid, and the feed-forward motion (the residual step it adds)."""
    require_extra("torch", "export")
    import torch

    from swarmedge.atomic import write_bytes
    from swarmedge.checkpoint import build_model, load_checkpoint
    from swarmedge.plots import png, pyplot

    if Path(model).is_dir():
        raise InputError("--fields reads the weights from the checkpoint: pass the .pt, not the bundle")
    output_folder(Path(out))  # before the work: a folder at out, or out inside a bundle, is refused
    ckpt = load_checkpoint(model)
    if ckpt["model_type"] != "boids":
        raise InputError(f"{model} is a {ckpt['model_type']} model; vector fields need a boid model")
    net = build_model(ckpt)
    block = net.encoder_layers[0]
    d, h = net.config.d_model, net.config.habitat_scaling
    axis = np.linspace(-1.2 * h, 1.2 * h, grid, dtype=np.float32)
    xs, ys = np.meshgrid(axis, axis)
    points = np.zeros((grid * grid, d), dtype=np.float32)
    points[:, 0], points[:, 1] = ys.ravel(), xs.ravel()  # (row, col) coordinates, like the boids
    if d > 2:
        points[:, 2] = z
    x = torch.from_numpy(points)
    with torch.no_grad():
        attn = block.self_attn
        q, k, v = torch.nn.functional.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, -1)
        motion = block.scaling * block.linear2(torch.relu(block.linear1(x)))
    fields = {"query": q, "key": k, "value": v, "feed-forward motion": motion}
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(9, 9))
    targets = class_targets(net.config.to_dict())
    for ax, (name, f) in zip(axes.ravel(), fields.items()):
        f = f.numpy()
        ax.quiver(xs, -ys, f[:, 1].reshape(grid, grid), -f[:, 0].reshape(grid, grid), np.hypot(f[:, 0], f[:, 1]),
                  cmap="viridis")
        ax.scatter(targets[:, 1], -targets[:, 0], marker="*", s=150, color="crimson")
        ax.set_title(name)
        ax.set_aspect("equal")
    fig.suptitle(f"block 1 on the plane z = {z:g} (x: column, y: -row); stars: class targets")
    output_folder(Path(out))
    write_bytes(Path(out), png(fig))
    return Path(out)


def output_folder(out: Path) -> None:
    """Check that the file ``out`` may be written and create its folder (and its parents) if missing.

    Raises InputError (one line) when ``out`` is a folder or lies inside a bundle
    (``check_output_file``), or when its folder cannot be made: a file in the way, no permission."""
    from swarmedge.output_paths import check_output_file

    check_output_file(Path(out))
    try:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot write {out}: cannot create its folder ({exc.strerror or exc})") from None
