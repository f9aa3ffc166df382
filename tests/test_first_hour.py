"""A new user's first hour outside `make`: where data comes from, model folders, where export
writes - each a finding of the first-hour trial (issue 15), reproduced and fixed."""

import functools
import http.server
import shutil
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from swarmedge.cli import cli
from swarmedge.datasets import builtin_in, resolve_data, vocab
from swarmedge.datasets import mnist as mnist_module
from swarmedge.datasets.sources import RemoteFile
from swarmedge.errors import InputError

from .conftest import ZOO

DEAD = "http://127.0.0.1:9/"  # nothing listens: a download that fails at once, never the network


@pytest.fixture
def bare(tmp_path, monkeypatch):
    """No SWARMEDGE_DATA, an empty cache, and a working folder of its own: a shell outside make."""
    monkeypatch.delenv("SWARMEDGE_DATA", raising=False)
    monkeypatch.setenv("SWARMEDGE_CACHE", str(tmp_path / "cache"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


def _dead(files):
    return [RemoteFile(f.name, (DEAD + f.name,), f.bytes, sha256=f.sha256) for f in files]


@pytest.fixture
def vocab_server(data_dir):
    """A loopback HTTP server holding bert-base-uncased's vocab.txt, as huggingface.co does."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(data_dir))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()


def test_init_finds_or_downloads_the_vocabulary_and_says_so(bare, vocab_server, monkeypatch):
    # Finding 1: the README's first example failed without SWARMEDGE_DATA.
    monkeypatch.setattr(vocab, "VOCAB", RemoteFile(vocab.VOCAB.name, (vocab_server + vocab.VOCAB.name,),
                                                    vocab.VOCAB.bytes, sha256=vocab.VOCAB.sha256))
    first = CliRunner().invoke(cli, ["init", "swarmformer", "--config", "small", "-o", "small.pt"])
    assert first.exit_code == 0, first.output
    assert "swarmedge: note: bert-base-uncased's vocabulary is not in" in first.stderr
    assert "downloading 0.2 MB from 127.0.0.1" in first.stderr and "sha256" in first.stderr
    assert "note" not in first.stdout  # results only on stdout
    assert (bare / "cache" / vocab.VOCAB.name).is_file() and Path("small.pt").is_file()
    again = CliRunner().invoke(cli, ["init", "swarmformer", "--config", "small", "-o", "again.pt"])
    assert again.exit_code == 0 and "downloading" not in again.stderr  # read from the cache now


def test_a_failed_vocabulary_download_names_options_that_exist_and_leaves_nothing(bare, monkeypatch):
    monkeypatch.setattr(vocab, "VOCAB", _dead([vocab.VOCAB])[0])
    result = CliRunner().invoke(cli, ["init", "swarmformer", "-o", "small.pt"])
    assert result.exit_code == 2
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("swarmedge: error: could not download bert-base-uncased's vocabulary")
    assert "pass --vocab VOCAB.txt or set SWARMEDGE_DATA" in line
    assert "--vocab" in CliRunner().invoke(cli, ["init", "--help"]).output
    assert not (bare / "cache").exists() and list(Path().iterdir()) == []


def test_eval_without_data_names_an_option_eval_has(bare, monkeypatch, zoo_boids_bundle):
    # Finding 1: the hint said --data DIR, which eval read as a data set name.
    monkeypatch.setattr(mnist_module, "REMOTE", _dead(mnist_module.REMOTE))
    result = CliRunner().invoke(cli, ["eval", str(zoo_boids_bundle), "--data", "mnist"])
    assert result.exit_code == 2
    line = result.stderr.strip().splitlines()[-1]
    assert "MNIST test" in line and "pass --data DIR or set SWARMEDGE_DATA" in line
    # only the test split's two files were asked for, not the 9.9 MB training images
    assert "t10k-images" in line and "train-images" not in line
    assert not (bare / "cache").exists()


@pytest.mark.parametrize("spelling", ["folder", "data-dir", "MNIST"])
def test_eval_takes_the_data_folder_as_data(bare, data_dir, zoo_boids_bundle, spelling, monkeypatch):
    # Following the hint, `eval --data <folder>` failed to decode the idx files as images.
    args = {"folder": ["--data", str(data_dir)], "data-dir": ["--data", "mnist", "--data-dir", str(data_dir)],
            "MNIST": ["--data", "MNIST"]}[spelling]
    if spelling == "MNIST":
        monkeypatch.setenv("SWARMEDGE_DATA", str(data_dir))
    result = CliRunner().invoke(cli, ["eval", str(zoo_boids_bundle), *args, "--limit", "40", "--json"])
    assert result.exit_code == 0, result.output
    assert '"data": "MNIST test' in result.stdout


def test_a_folder_with_both_data_sets_is_read_as_the_models_kind(data_dir, tmp_path):
    assert builtin_in(data_dir, "images") == "mnist" and builtin_in(data_dir, "text") == "imdb"
    assert resolve_data(str(data_dir), None, "text") == ("imdb", data_dir)
    assert resolve_data("Imdb") == ("imdb", None)
    own = tmp_path / "digits"
    (own / "5").mkdir(parents=True)
    assert builtin_in(own) is None and resolve_data(str(own)) == (str(own), None)  # the user's own data


def test_train_takes_the_data_set_by_name(data_dir, monkeypatch):
    from swarmedge.training.setup import load_training_data

    monkeypatch.setenv("SWARMEDGE_DATA", str(data_dir))
    ds = load_training_data("boids", Path("mnist"), digits=(5, 6))
    assert ds.source == "MNIST train" and ds.label_names == ["5", "6"]
    with pytest.raises(InputError, match="learns from digit images"):
        load_training_data("boids", Path("imdb"))


def test_text_bundle_on_digits_is_one_line(zoo_small_bundle, data_dir, monkeypatch):
    # Finding 2: `eval small.bundle --data mnist` ended in a ValueError traceback.
    monkeypatch.setenv("SWARMEDGE_DATA", str(data_dir))
    result = CliRunner().invoke(cli, ["eval", str(zoo_small_bundle), "--data", "mnist"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.strip().splitlines() == [
        "swarmedge: error: mnist holds digit images, but this model classifies texts (labels negative, positive): "
        "pass --data imdb, or a .jsonl of {\"text\", \"label\"} records"]


def test_zoo_folders_are_models_and_export_writes_here(bare, data_dir, monkeypatch):
    # Finding 3: the zoo's folders were refused ("model.safetensors not found"), and with
    # .../model.pt the bundle went into the source tree.
    monkeypatch.setenv("SWARMEDGE_DATA", str(data_dir))
    zoo = bare / "zoo" / "boids-5v6"
    shutil.copytree(ZOO / "boids-5v6", zoo)
    before = sorted(p.name for p in zoo.iterdir())
    result = CliRunner().invoke(cli, ["export", str(zoo)])
    assert result.exit_code == 0, result.output
    assert (Path.cwd() / "boids-5v6.bundle" / "manifest.json").is_file()
    assert sorted(p.name for p in zoo.iterdir()) == before  # nothing written beside the model
    from_file = CliRunner().invoke(cli, ["export", str(zoo / "model.pt"), "-o", "again.bundle"])
    assert from_file.exit_code == 0, from_file.output
    ev = CliRunner().invoke(cli, ["eval", str(zoo), "--data", "mnist", "--limit", "20"])
    assert ev.exit_code == 0 and ev.stdout.splitlines()[1].startswith("accuracy"), ev.output


@pytest.mark.parametrize("content", ["empty", "bundle"])
def test_a_folder_without_a_model_is_one_line(bare, zoo_boids_bundle, content):
    folder = zoo_boids_bundle if content == "bundle" else bare / "empty"
    folder.mkdir(exist_ok=True)
    result = CliRunner().invoke(cli, ["export", str(folder), "-o", "x.bundle"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    expected = "is a bundle (an exported model)" if content == "bundle" else "holds no model: a model folder holds"
    assert expected in result.stderr and not Path("x.bundle").exists()


def test_int8_that_quantized_nothing_says_so(boids_bundle, text_bundle, data_dir, monkeypatch):
    # Finding 4: the boid "int8" bundle has no quantized operator, yet the summary said
    # "dynamic QOperator for x86-vnni" and eval said "onnxruntime int8".
    import json

    from swarmedge.summary import bundle_summary

    boids = json.loads((boids_bundle / "manifest.json").read_text())
    assert boids["quantization"]["quantized_matmuls"] == 0 and boids["quantization"]["matmuls"] > 0
    summary = bundle_summary(boids_bundle, boids)
    assert "int8        nothing quantized: all" in summary and "QOperator" not in summary
    monkeypatch.setenv("SWARMEDGE_DATA", str(data_dir))
    result = CliRunner().invoke(cli, ["eval", str(boids_bundle), "--data", "mnist", "--limit", "20", "--json"])
    assert json.loads(result.stdout)["engine"] == "onnxruntime int8 (nothing quantized: the fp32 computation)"
    text = json.loads((text_bundle / "manifest.json").read_text())
    q = text["quantization"]
    assert 0 < q["quantized_matmuls"] <= q["matmuls"]
    assert f"{q['quantized_matmuls']} of {q['matmuls']} MatMuls in int8" in bundle_summary(text_bundle, text)


def test_parity_line_says_how_much_of_the_tolerance_was_used(boids_bundle):
    # Finding 4: "max |diff| 1.8e-04 (tolerance 0.0001 + ...) ok" read like a failure.
    import json

    from swarmedge.summary import bundle_summary

    manifest = json.loads((boids_bundle / "manifest.json").read_text())
    used = manifest["parity"]["share_of_tolerance"]
    assert set(used) == set(manifest["parity"]["max_abs_diff"]) and all(0 <= u <= 1 for u in used.values())
    line = next(x for x in bundle_summary(boids_bundle, manifest).splitlines() if x.startswith("parity"))
    assert f"scores {manifest['parity']['max_abs_diff']['scores']:.1e} ({used['scores']:.0%} of its tolerance)" in line
    assert line.endswith("x the output's max |value|: ok")


def test_replacing_a_bundle_is_said_and_no_overwrite_refuses(bare, tiny_boids_ckpt):
    # Finding 5: `export --mode static small.pt` silently replaced the bundle made a minute earlier.
    first = CliRunner().invoke(cli, ["export", str(tiny_boids_ckpt), "--quantize", "none"])
    assert first.exit_code == 0 and "replaced" not in first.stderr
    bundle = Path("boids.bundle")
    manifest = (bundle / "manifest.json").read_bytes()
    kept = CliRunner().invoke(cli, ["export", str(tiny_boids_ckpt), "--no-overwrite"])
    assert kept.exit_code == 2 and (bundle / "manifest.json").read_bytes() == manifest
    assert kept.stderr.strip() == ("swarmedge: error: boids.bundle exists and --no-overwrite keeps it: choose "
                                   "another -o, or drop --no-overwrite to replace it")
    again = CliRunner().invoke(cli, ["export", str(tiny_boids_ckpt)])
    assert again.exit_code == 0, again.output
    note = [x for x in again.stderr.splitlines() if x.startswith("swarmedge: note: replaced")]
    assert len(note) == 1 and "it held fp32 only of boids.pt, exported" in note[0]
    assert "replaced" not in again.stdout  # the summary on stdout stays the summary


def _commands(group, path=()):
    import click

    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def test_every_command_has_examples_and_every_option_help():
    # Finding 6: train boids/swarmformer had no examples; --json, --quantize, --warmup, --repeat,
    # --latency-inputs and more had no help text.
    import click

    missing = [f"{' '.join(path)}: examples" for path, c in _commands(cli) if "Examples:" not in (c.help or "")]
    missing += [f"{' '.join(path)} {p.opts[0]}" for path, c in _commands(cli) for p in c.params
                if isinstance(p, click.Option) and not p.help]
    assert missing == []


def test_optimum_names_are_primary_and_the_old_ones_still_work(tiny_boids_ckpt, tiny_text_ckpt, tmp_path):
    # Finding 6: optimum-cli's --atol, onnxruntime's calibration method and QuantType, per-channel
    # and reduce-range switches; --tolerance and --method kept as aliases.
    import json

    help_text = CliRunner().invoke(cli, ["export", "--help"]).output
    for flag in ("--atol, --tolerance", "--calibration-method, --method", "--per-channel / --per-tensor",
                 "--reduce-range / --no-reduce-range", "--weight-type"):
        assert flag in help_text, flag
    old = CliRunner().invoke(cli, ["export", str(tiny_boids_ckpt), "-o", str(tmp_path / "a.bundle"),
                                   "--tolerance", "1e-3", "--quantize", "none"])
    assert old.exit_code == 0, old.output
    assert json.loads((tmp_path / "a.bundle" / "manifest.json").read_text())["parity"]["tolerance"] == 1e-3
    out = tmp_path / "t.bundle"
    result = CliRunner().invoke(cli, ["export", str(tiny_text_ckpt), "-o", str(out), "--target", "x86-vnni",
                                      "--per-tensor", "--reduce-range", "--weight-type", "int8"])
    assert result.exit_code == 0, result.output
    target = json.loads((out / "manifest.json").read_text())["quantization"]["target"]
    assert (target["per_channel"], target["reduce_range"], target["weight_type"]) == (False, True, "s8")
    assert target["reasons"]["per_channel"].startswith("asked for on the command line (--per-tensor)")
    assert target["reasons"]["weight_type"] == ("asked for on the command line (--weight-type int8); the x86-vnni "
                                                "preset's choice: s8")


def test_demo_ends_with_what_to_try_next_and_cuts_texts_at_words(data_dir, tmp_path, monkeypatch):
    # Finding 7: the demo never said what to try next and cut texts mid-word.
    from swarmedge.demo import TEXTS, _shortened, run_demo

    monkeypatch.setenv("SWARMEDGE_DATA", str(data_dir))
    lines: list[str] = []
    results = run_demo(tmp_path / "demo", lines.append)
    tail = lines[lines.index("next, with your own inputs:"):]
    assert f"swarmedge run {results['swarmformer-small']['bundle']} --text" in tail[1]
    assert f"swarmedge run {results['boids-5v6']['bundle']} --image" in tail[2]
    for text in TEXTS:
        short = _shortened(text)
        assert len(short) <= 70 and any(f"  {short}" in x for x in lines)
        if short != text:  # cut: only whole words, then an ellipsis
            assert short.endswith("…") and text.startswith(short[:-1]) and text[len(short) - 1] == " "
    # the boid bundle's int8 file quantizes nothing: the demo says so, as eval does; the text model's is int8
    heads = [x for x in lines if x.startswith("predictions (")]
    assert heads == ["predictions (onnxruntime int8, no torch in the loop):",
                     "predictions (onnxruntime int8 (nothing quantized: the fp32 computation), no torch in the loop):"]


def test_eval_says_what_it_evaluated_and_refuses_a_precision_it_cannot_honour(zoo_boids_bundle, data_dir,
                                                                              monkeypatch):
    # found by a newcomer: the text report never said engine or data, and `eval x.pt --precision
    # int8` silently evaluated PyTorch fp32
    monkeypatch.setenv("SWARMEDGE_DATA", str(data_dir))
    ev = CliRunner().invoke(cli, ["eval", str(zoo_boids_bundle), "--data", "mnist", "--limit", "20"])
    assert ev.stdout.splitlines()[0] == (f"{zoo_boids_bundle} with onnxruntime int8 (nothing quantized: the fp32 "
                                         "computation) on MNIST test")
    ckpt = ZOO / "boids-5v6" / "model.pt"
    bad = CliRunner().invoke(cli, ["eval", str(ckpt), "--data", "mnist", "--precision", "int8"])
    assert bad.exit_code == 2 and bad.stderr.strip().splitlines() == [
        f"swarmedge: error: --precision int8 applies to bundles; {ckpt} is a checkpoint, evaluated with PyTorch "
        f"in fp32: export it (swarmedge export {ckpt}) and evaluate the bundle"]


@pytest.mark.parametrize("where", ["--data-dir", "SWARMEDGE_DATA"])
def test_a_data_folder_that_does_not_exist_is_one_line_not_a_download(bare, zoo_boids_bundle, monkeypatch, where):
    # found by a newcomer: a typo in the folder was skipped, and a download started
    missing = bare / "nonexist"
    args = ["eval", str(zoo_boids_bundle), "--data", "mnist"]
    if where == "--data-dir":
        args += ["--data-dir", str(missing)]
        expected = (f"swarmedge: error: data folder {missing} does not exist: check the path given with "
                    "--data/--data-dir")
    else:
        monkeypatch.setenv("SWARMEDGE_DATA", str(missing))
        expected = (f"swarmedge: error: SWARMEDGE_DATA={missing} is not a folder: point it at the folder holding "
                    "the data, or unset it")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and result.stderr.strip().splitlines() == [expected]
    assert not (bare / "cache").exists()


def test_a_model_folder_given_as_a_bundle_says_export_it_first(tmp_path):
    # found by a newcomer: `run zoo/boids-5v6` said "an incomplete copy; export it again"
    image = tmp_path / "x.png"
    image.write_bytes(b"")
    folder = ZOO / "boids-5v6"
    result = CliRunner().invoke(cli, ["run", str(folder), "--image", str(image)])
    assert result.exit_code == 2 and result.stderr.strip().splitlines() == [
        f"swarmedge: error: {folder} is a model folder, not a bundle: export it first (swarmedge export {folder}) "
        "and use the bundle it writes"]


def test_demo_without_mnist_says_its_digits_are_typeset_and_notes_once(tmp_path, monkeypatch):
    # Newcomer trial: a plain `swarmedge demo` (no SWARMEDGE_DATA) showed two rendered 6s read as 5
    # at 0.98 with no word of warning, under a note printed as "swarmedge: note: swarmedge: note: ...".
    monkeypatch.delenv("SWARMEDGE_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["demo", "--workdir", "d"])
    assert result.exit_code == 0, result.output
    assert "digits: digits rendered offline" in result.stdout
    assert "typeset digits, not the handwriting the model learnt" in result.stdout
    assert "note: swarmedge: note" not in result.stderr


@pytest.mark.parametrize("where", ["a-file", "a-file/below"])
def test_demo_workdir_that_cannot_be_a_folder_is_refused_in_one_line(tmp_path, where):
    (tmp_path / "a-file").write_text("keep")
    result = CliRunner().invoke(cli, ["demo", "--workdir", str(tmp_path / where)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot make that folder" in lines[0] and "--workdir" in lines[0]
    assert (tmp_path / "a-file").read_text() == "keep"


def test_sizes_are_in_the_units_the_zoo_cards_use(boids_bundle):
    # Newcomer trial: export said "MB" for MiB (1,048,576 bytes) while the zoo cards count 10**6.
    import json

    from swarmedge.summary import bundle_summary, human_bytes

    assert [human_bytes(n) for n in (999, 158_775, 13_990_000, 2.5e9)] == ["999 B", "158.8 kB", "14.0 MB", "2.5 GB"]
    assert [human_bytes(n) for n in (999_960, 999_999_999)] == ["1.0 MB", "1.0 GB"]  # never "1000.0 kB"
    manifest = json.loads((boids_bundle / "manifest.json").read_text())
    size = (boids_bundle / "model.onnx").stat().st_size
    assert f"model.onnx {human_bytes(size)}" in bundle_summary(boids_bundle, manifest)
    assert human_bytes(size) == f"{size / 1000:.1f} kB"
