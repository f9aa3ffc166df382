"""zoo/: every model within the budget, and its card's figures still what swarmedge measures.

The full-test-set check runs for the boid model (1,850 digits); the text models' cards are
checked on the seeded 1,000-review sample that tools/zoo.py also measured, since PyTorch on
25,000 reviews takes minutes. `swarmedge eval zoo/NAME/model.pt --data D` on the full set
gives the card's first PyTorch row (tools/zoo.py measured it that way).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from swarmedge.evaluate import evaluate_model

from .conftest import ROOT, ZOO

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

import zoo  # noqa: E402

MODELS = sorted(p.parent.name for p in ZOO.glob("*/model.pt"))
RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"


def _card(name: str) -> dict:
    return json.loads((ZOO / name / "card.json").read_text())


def _stored_row(card: dict) -> dict:
    return next(r for r in card["rows"] if r["variant"] == zoo.STORED)


@pytest.mark.parametrize("name", MODELS)
def test_every_zoo_model_is_within_the_budget_and_has_its_card(name):
    assert (ZOO / name / "model.pt").stat().st_size <= zoo.BUDGET_BYTES
    assert (ZOO / name / "card.json").is_file(), f"measure the card: python tools/zoo.py RUN {name} --seed N"
    card = _card(name)
    assert (RESULTS / card["run"] / f"seed-{card['seed']}.json").is_file(), "the card's run is in docs/results"
    readme = (ZOO / name / "README.md").read_text()
    assert f"| {zoo.STORED} | {_stored_row(card)['accuracy']:.2%} |" in readme
    stored = torch.load(ZOO / name / "model.pt", map_location="cpu", weights_only=True)
    assert stored["metadata"]["weights_storage"] == card["weights"]


@pytest.mark.parametrize("name", [m for m in MODELS if (ZOO / m / "card.json").is_file()
                                  and _card(m)["data"] == "mnist"])
def test_eval_on_the_full_test_set_gives_the_cards_accuracy(name, data_dir):
    card = _card(name)
    report = evaluate_model(ZOO / name / "model.pt", card["data"], data_dir=data_dir)
    assert report["samples"] == card["samples"]
    assert report["accuracy"] == _stored_row(card)["accuracy"]


@pytest.mark.parametrize("name", MODELS)
def test_eval_on_the_seeded_sample_gives_the_cards_accuracy(name, data_dir):
    card = _card(name)
    subset = card["subset"]
    report = evaluate_model(ZOO / name / "model.pt", card["data"], data_dir=data_dir, limit=subset["limit"],
                            seed=subset["seed"])
    assert (report["samples"], report["accuracy"]) == (subset["samples"], subset["accuracy"])


def test_float16_storage_halves_the_file_and_loads_as_float32(tmp_path):
    from swarmedge.checkpoint import init_checkpoint, load_checkpoint, save_checkpoint

    source = tmp_path / "boids.pt"
    save_checkpoint(init_checkpoint("boids", {"d_model": 16, "dim_feedforward": 256}, seed=1), source)
    zoo.store(source, tmp_path / "half.pt", "float16")
    original = torch.load(source, weights_only=True)["state_dict"]
    assert (tmp_path / "half.pt").stat().st_size < 0.6 * source.stat().st_size
    notices: list[str] = []
    loaded = load_checkpoint(tmp_path / "half.pt", notices=notices)
    assert any("float16" in n and "float32" in n for n in notices)
    for key, tensor in original.items():
        assert loaded["state_dict"][key].dtype == torch.float32
        assert torch.equal(loaded["state_dict"][key], tensor.half().float())
        assert torch.allclose(loaded["state_dict"][key], tensor, rtol=2**-11, atol=3e-8)
    assert loaded["metadata"]["weights_storage"] == "float16"


def _fake_run(root: Path, workdir: Path, seed: int, accuracy: float) -> Path:
    """A docs/results record and the checkpoint it names, under ``root`` (zoo.ROOT in the test)."""
    from swarmedge.checkpoint import init_checkpoint, save_checkpoint

    record = root / "docs" / "results" / "boids-b1" / f"seed-{seed}.json"
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"name": "boids-b1", "data": "mnist", "published": 89.68, "seed": seed,
                                  "rows": [{"variant": "PyTorch fp32", "accuracy": accuracy}]}))
    ckpt = init_checkpoint("boids", {"blocks": 1, "dim_feedforward": 16}, seed=seed)
    ckpt["metadata"]["training"] = {"seed": seed}
    workdir.mkdir()
    save_checkpoint(ckpt, workdir / f"boids-b1-s{seed}.pt")
    return record


@pytest.mark.parametrize(("args", "message"), [
    (("boids-b1", "../escape", 3), "zoo name"), (("boids-b1", ".", 3), "zoo name"),
    (("boids-b1", "new", 4), "no docs/results/boids-b1/seed-4.json"),
])
def test_publishing_refuses_bad_names_and_missing_runs(tmp_path, monkeypatch, args, message):
    monkeypatch.setattr(zoo, "ROOT", tmp_path)
    _fake_run(tmp_path, tmp_path / "runs", 3, 0.5)
    with pytest.raises(zoo.Refused, match=message):
        zoo.publish(*args, tmp_path / "runs", "float32")
    assert not (tmp_path / "zoo").exists() or not any((tmp_path / "zoo").iterdir())


def test_a_refused_publish_leaves_the_zoo_folder_as_it_was(tmp_path, monkeypatch, data_dir):
    monkeypatch.setattr(zoo, "ROOT", tmp_path)
    monkeypatch.setenv("SWARMEDGE_DATA", str(data_dir))
    _fake_run(tmp_path, tmp_path / "runs", 3, 0.999)
    published = tmp_path / "zoo" / "b1"
    published.mkdir(parents=True)
    (published / "model.pt").write_bytes(b"the published model")
    (published / "card.json").write_text("{}")
    before = {p.name: p.read_bytes() for p in published.iterdir()}
    with pytest.raises(zoo.Refused, match="budget"):  # refused before anything is measured
        monkeypatch.setattr(zoo, "BUDGET_BYTES", 100)
        zoo.publish("boids-b1", "b1", 3, tmp_path / "runs", "float32")
    monkeypatch.setattr(zoo, "BUDGET_BYTES", 25 * 10**6)
    with pytest.raises(zoo.Refused, match="not the checkpoint that run made"):  # measured: not 99.9%
        zoo.publish("boids-b1", "b1", 3, tmp_path / "runs", "float32")
    ckpt = torch.load(tmp_path / "runs" / "boids-b1-s3.pt", weights_only=True)
    ckpt["metadata"]["training"]["seed"] = 9
    torch.save(ckpt, tmp_path / "runs" / "boids-b1-s3.pt")
    with pytest.raises(zoo.Refused, match="trained with seed 9, not 3"):
        zoo.publish("boids-b1", "b1", 3, tmp_path / "runs", "float32")
    assert {p.name: p.read_bytes() for p in published.iterdir()} == before
    assert sorted(p.name for p in published.parent.iterdir()) == ["b1"]  # no staging folder left


def test_check_names_a_model_without_its_card(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(zoo, "ROOT", tmp_path)
    (tmp_path / "zoo" / "lost").mkdir(parents=True)
    (tmp_path / "zoo" / "lost" / "model.pt").write_bytes(b"x")
    assert zoo.check() == 1
    assert "FAILED  no readable card.json" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "message"), [
    (["nosuchrun", "x", "--seed", "0"], "unknown run 'nosuchrun'; the runs of tools/reproduce.py are: boids-b1"),
    (["boids-b1", "/tmp/abs", "--seed", "0"], "one folder name"),
])
def test_the_command_line_refuses_in_one_line_with_exit_2(args, message):
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "zoo.py"), *args], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr, r.stderr
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "zoo//" not in r.stderr and ("unknown run" in message or r.stderr.rstrip().endswith("the zoo is unchanged"))
