"""Limits with clear refusals: threads, model sizes, image pixels, boid counts, batch sizes, choices.

Each bad value is refused with a non-zero exit and one line naming the option and what it
allows, or (threads above the cores) capped with a one-line note.
"""

import struct
import warnings
import zlib

import numpy as np
import pytest
from click.testing import CliRunner

from swarmedge.cli import cli
from swarmedge.errors import CheckpointError, InputError
from swarmedge.runtimes.batching import default_workers

CORES = default_workers()


@pytest.fixture()
def runner(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def refused(result, *words, reliability=None) -> str:
    """The one error line of a refused command; it must name every one of ``words``."""
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    last = lines[-1]
    # the error is the whole of stderr, click's usage errors included (swarmedge/cli_errors.py)
    assert len(lines) == 1 and last.startswith("swarmedge: error: "), result.stderr
    for word in words:
        assert word in last, (word, last)
    if reliability is not None:
        reliability["limits"]["refused in one line"] += 1
    return last


@pytest.fixture(scope="module")
def digits_npy(tmp_path_factory, data_dir):
    with np.load(data_dir / "mnist.npz") as z:
        x = z["x_test"][:3]
    path = tmp_path_factory.mktemp("digits") / "three.npy"
    np.save(path, x)
    return path


# -- 1. threads ---------------------------------------------------------------------------

def test_threads_above_the_cores_are_capped_with_a_note(monkeypatch, reliability):
    from swarmedge.runtimes import batching

    monkeypatch.setattr(batching, "default_workers", lambda: 2)
    assert batching.clamp_threads(2) == (2, None)
    threads, notice = batching.clamp_threads(1000)
    assert threads == 2 and "--threads 1000" in notice and "2 cores" in notice
    for bad in (0, -1, True, 2.5, "4", None):
        with pytest.raises(InputError, match="--threads must be an integer >= 1"):
            batching.clamp_threads(bad)
        reliability["limits"]["refused in one line"] += 1
    reliability["limits"]["capped with a note"] += 1


def test_run_and_profile_cap_threads_and_refuse_zero(runner, boids_bundle, digits_npy, reliability):
    r = runner.invoke(cli, ["run", str(boids_bundle), "--file", str(digits_npy), "--threads", "1000"])
    assert r.exit_code == 0, r.stderr
    assert f"swarmedge: note: --threads 1000 is more than the {CORES} cores" in r.stderr
    assert len(r.stdout.strip().splitlines()) == 3
    reliability["limits"]["capped with a note"] += 1
    refused(runner.invoke(cli, ["run", str(boids_bundle), "--file", str(digits_npy), "--threads", "0"]),
            "--threads", "x>=1", reliability=reliability)
    r = runner.invoke(cli, ["profile", str(boids_bundle), "--threads", f"1,{CORES + 5}", "--repeat", "2",
                            "--warmup", "0", "--precision", "fp32", "--json"])
    assert r.exit_code == 0, r.stderr
    assert f"--threads {CORES + 5} is more than" in r.stderr
    import json

    threads = [c["threads"] for c in json.loads(r.stdout)["configs"]]
    assert max(threads) == CORES and len(threads) == len(set(threads))  # capped, and not profiled twice
    reliability["limits"]["capped with a note"] += 1
    refused(runner.invoke(cli, ["profile", str(boids_bundle), "--threads", "0"]), "--threads",
            reliability=reliability)


def test_classifier_caps_threads_with_a_warning(boids_bundle, reliability):
    from swarmedge.runtimes import Classifier

    with pytest.warns(RuntimeWarning, match="threads 1000 is more than"):
        clf = Classifier(boids_bundle, threads=1000)
    assert clf.threads == CORES and len(clf.notices) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Classifier(boids_bundle, threads=1).notices == []
    for bad in (0, -3, 1.5, True):
        with pytest.raises(InputError, match="threads must be an integer >= 1"):
            Classifier(boids_bundle, threads=bad)
        reliability["limits"]["refused in one line"] += 1


# -- 2. model sizes, before anything is built ---------------------------------------------

@pytest.mark.parametrize("model_type,config,words", [
    ("boids", {"blocks": 10**12}, ["'blocks'", "at most 100"]),
    ("boids", {"d_model": 10**9}, ["'d_model'", "at most 1,024"]),
    ("boids", {"dim_feedforward": 10**8}, ["'dim_feedforward'", "at most 65,536"]),
    ("boids", {"blocks": 0}, ["blocks", "positive"]),
    ("boids", {"blocks": -5}, ["blocks", "positive"]),
    ("boids", {"residual_scaling": float("nan")}, ["'residual_scaling'", "finite"]),
    ("boids", {"habitat_scaling": float("inf")}, ["'habitat_scaling'", "finite"]),
    ("boids", {"habitat_scaling": 0.0}, ["'habitat_scaling'", "> 0"]),
    ("swarmformer", {"vocab_size": 10**9}, ["'vocab_size'", "at most 1,000,000"]),
    ("swarmformer", {"d_model": 10**9}, ["'d_model'", "at most 4,096"]),
    ("swarmformer", {"d_model": 0}, ["d_model", "positive"]),
    ("swarmformer", {"seq_len": -8}, ["seq_len", "positive"]),
    ("swarmformer", {"seq_len": 2**20, "cluster_size": 8}, ["'seq_len'", "at most 16,384"]),
    ("swarmformer", {"num_layers": 1000}, ["'num_layers'", "at most 64"]),
    ("swarmformer", {"T_local": 10**6}, ["'T_local'", "at most 32"]),
])
def test_configs_out_of_bounds_are_refused_before_building(model_type, config, words, reliability):
    from swarmedge.models import config_from_dict

    with pytest.raises(ValueError) as exc:
        config_from_dict(model_type, config)
    for word in words:
        assert word in str(exc.value)
    assert "\n" not in str(exc.value)
    reliability["limits"]["refused in one line"] += 1


@pytest.mark.parametrize("model_type,config", [
    ("boids", {}), ("boids", {"recurrent": False, "blocks": 4, "d_model": 7, "dim_feedforward": 33}),
    ("boids", {"digits": [0, 1, 2, 3, 4, 5, 6, 7], "d_model": 5}),
    ("swarmformer", {"vocab_size": 97, "d_model": 24, "num_layers": 3, "num_classes": 5, "seq_len": 64}),
    ("swarmformer", {"vocab_size": 50, "d_model": 8, "num_layers": 1, "T_local": 0, "cluster_size": 4}),
])
def test_parameter_count_from_the_config_equals_the_built_model(model_type, config):
    from swarmedge.limits import parameter_count
    from swarmedge.models import build

    model = build(model_type, config)
    assert parameter_count(model_type, model.config.to_dict()) == sum(p.numel() for p in model.parameters())


def test_weights_larger_than_memory_are_refused():
    from swarmedge.limits import check_memory
    from swarmedge.models.swarmformer import PRESETS

    small = PRESETS["small"].to_dict()  # 4,302,850 parameters: 17.2 MB of float32, 68.8 MB to train
    check_memory("swarmformer", small, available=20 * 2**20)
    with pytest.raises(ValueError, match=r"4,302,850 parameters .* more than the 0\.0 GiB"):
        check_memory("swarmformer", small, available=10 * 2**20)
    with pytest.raises(ValueError, match="16 bytes each"):
        check_memory("swarmformer", small, bytes_per_param=16, available=20 * 2**20)


def test_training_checks_its_config_and_memory_first(monkeypatch, runner, reliability):
    from swarmedge import limits
    from swarmedge.training.setup import check_trainable

    monkeypatch.setattr(limits, "available_memory", lambda: 10**6)
    with pytest.raises(InputError, match="cannot train this boids: .* parameters"):
        check_trainable("boids", {"dim_feedforward": 65_536})  # 7.3 MB to train
    reliability["limits"]["refused in one line"] += 1
    for args, words in ((["--blocks", "1000"], ["'--blocks'", "1<=x<=100"]),
                        (["--d-model", "100000"], ["'--d-model'", "3<=x<=1024"]),
                        (["--batch-size", "0"], ["'--batch-size'", "1<=x<=4096"]),
                        (["--lr", "nan"], ["'--lr'", "finite"]), (["--lr", "0"], ["'--lr'", "0<x<=10"]),
                        (["--seed", "-1"], ["'--seed'", "0<=x<=4294967295"]),
                        (["--threads", "0"], ["'--threads'", "x>=1"])):
        refused(runner.invoke(cli, ["train", "boids", *args, "-o", "t.pt"]), *words, reliability=reliability)


def _checkpoint_with(tmp_path, tiny_boids_ckpt, **config):
    import torch

    ckpt = torch.load(tiny_boids_ckpt, weights_only=True)
    ckpt["config"].update(config)
    path = tmp_path / "edited.pt"
    torch.save(ckpt, path)
    return path


def test_a_checkpoint_claiming_10_to_the_12_blocks_is_refused_not_exported(tmp_path, tiny_boids_ckpt, runner,
                                                                           reliability):
    from swarmedge.checkpoint import load_checkpoint

    path = _checkpoint_with(tmp_path, tiny_boids_ckpt, blocks=10**12)  # one shared block: weights still fit
    with pytest.raises(CheckpointError, match="'blocks' is 1,000,000,000,000; at most 100"):
        load_checkpoint(path)
    refused(runner.invoke(cli, ["export", str(path), "-o", str(tmp_path / "x.bundle")]), "edited.pt", "'blocks'",
            "at most 100", reliability=reliability)
    assert not (tmp_path / "x.bundle").exists()
    refused(runner.invoke(cli, ["init", "boids", "--set", "blocks=1000000000000", "-o", "b.pt"]), "'blocks'",
            reliability=reliability)
    refused(runner.invoke(cli, ["init", "boids", "--seed", "-1", "-o", "b.pt"]), "'--seed'", "0<=x",
            reliability=reliability)


# -- 3. image pixels and array sizes ------------------------------------------------------

def _png_header(path, width: int, height: int) -> None:
    """A PNG whose header claims width x height 8-bit grey pixels; no pixel data follows."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) +
                     chunk(b"IEND", b""))


@pytest.mark.parametrize("pillow_limit", ["default", "disabled"])
def test_a_huge_image_is_refused_from_its_header(tmp_path, monkeypatch, pillow_limit, reliability):
    from PIL import Image

    from swarmedge.runtimes.image_decode import decode_image

    if pillow_limit == "disabled":  # another library may switch Pillow's check off: ours still holds
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    for w, h in ((100_000, 100_000), (9000, 9000), (40_000, 10)):
        path = tmp_path / f"{w}x{h}.png"
        _png_header(path, w, h)
        with pytest.raises(InputError) as exc:
            decode_image(path)
        message = str(exc.value)
        assert "decompression bomb" in message and "shrink it" in message and "\n" not in message
        reliability["limits"]["refused in one line"] += 1


def test_big_pictures_shrink_a_band_at_a_time_to_the_same_bits():
    from PIL import Image

    from swarmedge.runtimes.image_decode import _shrink, _shrunk_bytes

    rng = np.random.default_rng(0)
    for shape in ((3001, 2100), (1030, 4099), (700, 500)):
        raw = rng.integers(0, 256, shape, dtype=np.uint8)
        whole, _ = _shrink(raw.astype(np.float32) / 255.0, None)
        np.testing.assert_array_equal(_shrunk_bytes(Image.fromarray(raw, "L")), whole)


def _npy_header(path, shape, dtype="|u1") -> None:
    """A .npy file with a header claiming ``shape`` and no data after it."""
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": dtype, "fortran_order": False, "shape": shape})


@pytest.mark.parametrize("shape,words", [((1, 100_000, 100_000), ["(1, 100000, 100000)", "expected"]),
                                         ((10**9, 28, 28), ["1,000,000,000 digits", "at most 100,000"]),
                                         ((100_001, 784), ["100,001 digits", "split it"])])
def test_array_files_are_refused_from_their_header(tmp_path, shape, words, reliability):
    from swarmedge.runtimes.image_arrays import load_array

    path = tmp_path / "big.npy"
    _npy_header(path, shape)
    with pytest.raises(InputError) as exc:
        load_array(path)
    assert all(w in str(exc.value) for w in words), str(exc.value)
    npz = tmp_path / "big.npz"  # the same inside an .npz member
    np.savez(npz, x_test=np.zeros((1, 28, 28), np.uint8))
    import zipfile

    with zipfile.ZipFile(npz, "w") as z, z.open("x_test.npy", "w") as member:
        np.lib.format.write_array_header_1_0(member, {"descr": "|u1", "fortran_order": False, "shape": shape})
    with pytest.raises(InputError) as exc:
        load_array(npz)
    assert all(w in str(exc.value) for w in words), str(exc.value)
    reliability["limits"]["refused in one line"] += 2


def test_in_memory_arrays_of_too_many_digits_are_refused(boids_bundle, reliability):
    from swarmedge.limits import MAX_DIGITS
    from swarmedge.runtimes import Classifier

    clf = Classifier(boids_bundle)
    too_many = np.broadcast_to(np.zeros((28, 28), np.uint8), (MAX_DIGITS + 1, 28, 28))  # no memory taken
    with pytest.raises(InputError, match=f"holds {MAX_DIGITS + 1:,} digits; at most {MAX_DIGITS:,}"):
        clf.classify_images(too_many)
    with pytest.raises(InputError, match=r"shape \(1, 100000, 100000\)"):
        clf.classify_images(np.broadcast_to(np.uint8(0), (1, 100_000, 100_000)))
    reliability["limits"]["refused in one line"] += 2


# -- 4. boid counts and sequence lengths; 5. batch sizes ----------------------------------

def test_profile_lengths_and_batches_are_bounded_by_the_model(runner, boids_bundle, text_bundle, reliability):
    for args, words in (
        ([str(boids_bundle), "--boids", "100000"], ["--boids 100000", "1..784", "pixel"]),
        ([str(boids_bundle), "--boids", "785"], ["--boids 785", "1..784"]),
        ([str(text_bundle), "--seq-len", "64"], ["--seq-len 64", "1..32", "seq_len"]),
        ([str(text_bundle), "--boids", "16"], ["--boids does not apply", "use --seq-len"]),
        ([str(boids_bundle), "--seq-len", "16"], ["--seq-len does not apply", "use --boids"]),
        ([str(boids_bundle), "--batch", "1,5000"], ["--batch 5000", "1..4,096"]),
        ([str(boids_bundle), "--repeat", "10000000"], ["'--repeat'", "1<=x<=100000"]),
        ([str(boids_bundle), "--warmup", "-1"], ["'--warmup'", "0<=x<=10000"]),
    ):
        refused(runner.invoke(cli, ["profile", *args]), *words, reliability=reliability)


def test_profile_refuses_activations_larger_than_memory(boids_bundle, reliability):
    from swarmedge.runtimes.bundle import Bundle
    from swarmedge.runtimes.profile import check_profile_options

    manifest = Bundle.open(boids_bundle).manifest
    check_profile_options(manifest, ["fp32"], [1], [8], [784], 0, 1, available=2**30)
    with pytest.raises(InputError, match="--batch 4096 at --boids 784 needs about"):
        check_profile_options(manifest, ["fp32"], [1], [4096], [784], 0, 1, available=2**30)
    reliability["limits"]["refused in one line"] += 1


def test_classifier_batch_size_is_bounded(boids_bundle, digits_npy, reliability):
    from swarmedge.runtimes import Classifier

    for bad in (-1, 0, 4097, 10**9, 2.0, True):
        with pytest.raises(InputError, match=r"batch_size must be an integer in 1\.\.4096"):
            Classifier(boids_bundle, batch_size=bad)
        reliability["limits"]["refused in one line"] += 1
    digits = np.load(digits_npy)
    assert len(Classifier(boids_bundle, batch_size=4096).classify_images(digits)) == 3


# -- 6. options with a fixed set of values --------------------------------------------------

def test_choices_are_validated_and_listed(runner, boids_bundle, digits_npy, reliability):
    bundle = str(boids_bundle)
    for args, words in (
        (["profile", bundle, "--precision", "int4"], ["'--precision'", "'int4'", "int8, fp32"]),
        (["profile", bundle, "--precision", "int8,bf16"], ["'--precision'", "'bf16'"]),
        (["run", bundle, "--file", str(digits_npy), "--precision", "int4"], ["'--precision'", "'int8', 'fp32'"]),
        (["eval", bundle, "--data", "mnist", "--precision", "fp16"], ["'--precision'"]),
        (["arm-check", bundle, "--cpu", "cortex-a99"], ["'--cpu'", "cortex-a72, cortex-a76"]),
        (["arm-check", bundle, "--precision", "int4"], ["'--precision'", "int8, fp32"]),
        (["export", "m.pt", "--target", "pi9"], ["'--target'", "'pi5'"]),
        (["export", "m.pt", "--mode", "weird"], ["'--mode'", "'dynamic', 'static'"]),
        (["export", "m.pt", "--method", "max"], ["'--method'", "'minmax'"]),
        (["export", "m.pt", "--opset", "99"], ["'--opset'", "18<=x<=26"]),
        (["export", "m.pt", "--tolerance", "nan"], ["'--tolerance'", "finite"]),
        (["export", "m.pt", "--tolerance", "-1"], ["'--tolerance'", "0<x<=1"]),
        (["train", "swarmformer", "--config", "huge", "-o", "t.pt"], ["'--config'", "'small', 'base'"]),
    ):
        refused(runner.invoke(cli, args), *words, reliability=reliability)
    r = runner.invoke(cli, ["profile", bundle, "--precision", "FP32", "--repeat", "2", "--warmup", "0", "--json"])
    assert r.exit_code == 0, r.stderr
    assert '"precision": "fp32"' in r.stdout and '"int8"' not in r.stdout  # only what was asked for
    r = runner.invoke(cli, ["run", bundle, "--file", str(digits_npy), "--precision", "FP32"])
    assert r.exit_code == 0, r.stderr


def test_python_api_precisions(boids_bundle, reliability):
    from swarmedge.runtimes import Classifier
    from swarmedge.runtimes.profile import profile_bundle

    assert Classifier(boids_bundle, precision="FP32").precision == "fp32"
    for bad in ("int4", 8, ["int8"]):
        with pytest.raises(InputError, match="precision"):
            Classifier(boids_bundle, precision=bad)
        reliability["limits"]["refused in one line"] += 1
    with pytest.raises(InputError, match="'int4' is not one of int8, fp32"):
        profile_bundle(boids_bundle, ["int8", "int4"], repeat=1, warmup=0)
    reliability["limits"]["refused in one line"] += 1
