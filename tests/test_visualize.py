"""`swarmedge visualize`: the swarm as a GIF (fp32 and int8 side by side) and the vector fields."""

import numpy as np
from click.testing import CliRunner
from PIL import Image

from swarmedge.cli import cli


def test_gif_and_fields(boids_bundle, tiny_boids_ckpt, data_dir, tmp_path):
    with np.load(data_dir / "mnist.npz") as z:
        Image.fromarray(z["x_test"][8]).save(tmp_path / "five.png")
    runner = CliRunner()
    gif = tmp_path / "swarm.gif"
    r = runner.invoke(cli, ["visualize", str(boids_bundle), "--image", str(tmp_path / "five.png"), "-o", str(gif)])
    assert r.exit_code == 0, r.output
    with Image.open(gif) as im:
        assert im.n_frames == 3 + 1  # the input, then after each of the 3 blocks
        assert im.size[0] > 1.8 * im.size[1]  # two panels: fp32 and int8
        first = np.asarray(im.convert("RGB")).copy()
        im.seek(im.n_frames - 1)
        last = np.asarray(im.convert("RGB"))
    assert not np.array_equal(first, last)  # the boids moved
    png = tmp_path / "fields.png"
    r = runner.invoke(cli, ["visualize", str(tiny_boids_ckpt), "--fields", "-o", str(png)])
    assert r.exit_code == 0, r.output
    with Image.open(png) as im:
        assert im.format == "PNG" and np.asarray(im.convert("L")).std() > 10  # arrows drawn, not blank


def test_visualize_errors(boids_bundle, text_bundle, tmp_path):
    runner = CliRunner()
    np.save(tmp_path / "d.npy", np.eye(28, dtype=np.float32))
    cases = [
        (["visualize", str(boids_bundle), "--fields", "-o", "f.png"], "pass the .pt"),
        (["visualize", str(text_bundle), "--image", str(tmp_path / "d.npy"), "-o", "s.gif"], "boid model"),
        (["visualize", str(boids_bundle), "--image", str(tmp_path / "d.npy"), "-o", "s.avi"], ".gif"),
        (["visualize", str(boids_bundle), "-o", "s.gif"], "--image"),
    ]
    for args, needle in cases:
        r = runner.invoke(cli, args)
        assert r.exit_code != 0 and needle in r.output, (args, r.output)


def test_visualize_creates_missing_folders(boids_bundle, tiny_boids_ckpt, data_dir, tmp_path):
    with np.load(data_dir / "mnist.npz") as z:
        Image.fromarray(z["x_test"][8]).save(tmp_path / "five.png")
    runner = CliRunner()
    gif = tmp_path / "missing" / "dir" / "v.gif"
    r = runner.invoke(cli, ["visualize", str(boids_bundle), "--image", str(tmp_path / "five.png"), "-o", str(gif)])
    assert r.exit_code == 0 and gif.is_file(), r.output
    assert [p.name for p in gif.parent.iterdir()] == ["v.gif"]  # no temporary file left beside it
    png = tmp_path / "other" / "dir" / "f.png"
    r = runner.invoke(cli, ["visualize", str(tiny_boids_ckpt), "--fields", "-o", str(png)])
    assert r.exit_code == 0 and png.is_file(), r.output
    (tmp_path / "a_file").write_text("in the way")
    for args in (["visualize", str(boids_bundle), "--image", str(tmp_path / "five.png")],
                 ["visualize", str(tiny_boids_ckpt), "--fields"]):
        r = runner.invoke(cli, [*args, "-o", str(tmp_path / "a_file" / "v.gif")])
        assert r.exit_code == 2 and "cannot create its folder" in r.output and "Traceback" not in r.output, r.output
