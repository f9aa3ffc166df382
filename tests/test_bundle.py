"""Opening a bundle: the model cross-checked against its manifest, the packaged schema, CLI refusals.

Confinement and hashes: test_bundle_files.py; the manifest itself: test_bundle_manifest.py.
"""

import json
import shutil
from pathlib import Path

import pytest

from swarmedge.manifest import read_manifest
from swarmedge.runtimes import Bundle, Classifier

from .bundle_edits import SECTION, copy_bundle, manifest_of, opener, refused, relist, write_manifest
from .conftest import run_device

# -- cross-checks of the model against the manifest --------------------------------

def test_another_models_onnx_with_matching_hashes_is_refused(text_bundle, boids_bundle, tmp_path, reliability):
    bundle = copy_bundle(text_bundle, tmp_path)
    m = manifest_of(bundle)
    for name in ("model.onnx", "model.int8.onnx"):
        shutil.copy(boids_bundle / name, bundle / name)
        relist(bundle, m, name)
    write_manifest(bundle, m)
    Bundle.open(bundle)  # the manifest alone cannot tell
    refused(reliability, lambda: Classifier(bundle), "takes inputs (boids float rank 3, lengths int64 rank 1)",
             "manifest says (input_ids int64 rank 2)")


def test_a_model_scoring_another_number_of_classes_is_refused(text_bundle, tmp_path, reliability):
    bundle = copy_bundle(text_bundle, tmp_path)
    m = manifest_of(bundle)
    m["labels"] = ["a", "b", "c"]
    m["config"]["num_classes"] = 3
    write_manifest(bundle, m)
    refused(reliability, opener(bundle, "int8"), "scores 2 classes but the manifest has 3 labels")


def test_a_missing_output_is_refused(boids_bundle, tmp_path, reliability):
    bundle = copy_bundle(boids_bundle, tmp_path)
    m = manifest_of(bundle)
    m["outputs"][2]["name"] = "path"
    write_manifest(bundle, m)
    refused(reliability, opener(bundle), "output path", "no such output")


@pytest.mark.parametrize("which,index,shape", [("text", 0, ["batch", 1]), ("boids", 0, ["batch", 5, 2])])
def test_a_fixed_manifest_dim_the_graph_leaves_free_is_refused(text_bundle, boids_bundle, tmp_path, reliability,
                                                                which, index, shape):
    bundle = copy_bundle(text_bundle if which == "text" else boids_bundle, tmp_path)
    m = manifest_of(bundle)
    m["inputs"][index]["shape"] = shape
    write_manifest(bundle, m)
    Bundle.open(bundle)  # the manifest alone cannot tell
    refused(reliability, opener(bundle), f"the manifest fixes inputs[{index}] dim 1 to {shape[1]}",
             "takes any size there")


def test_not_an_onnx_model_is_one_line(text_bundle, tmp_path, reliability):
    bundle = copy_bundle(text_bundle, tmp_path)
    (bundle / "model.onnx").write_bytes(b"not a model at all")
    m = manifest_of(bundle)
    relist(bundle, m, "model.onnx")
    write_manifest(bundle, m)
    refused(reliability, opener(bundle), "onnxruntime cannot load", "export the bundle again")


# -- what the exporter writes, and which schema is used ----------------------------------

def test_exported_bundles_validate_against_the_packaged_schema(text_bundle, boids_bundle):
    from importlib.resources import files

    import fastjsonschema

    from swarmedge.manifest_schema import SCHEMA_FILE, schema

    packaged = files("swarmedge.runtimes").joinpath(SCHEMA_FILE)
    assert schema() == json.loads(packaged.read_text(encoding="utf-8"))
    assert "format_version:1" in schema()["$id"] and schema()["properties"]["format_version"]["const"] == 1
    validate = fastjsonschema.compile(schema())
    for bundle in (text_bundle, boids_bundle):
        validate(manifest_of(bundle))  # the plain schema, without swarmedge's reader
        read_manifest(bundle)
        for precision in Bundle.open(bundle).precisions:
            Bundle.open(bundle).session(precision)


def test_the_schema_ships_in_the_package_data():
    import tomllib

    root = Path(__file__).resolve().parents[1]
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    assert "bundle.schema.json" in pyproject["tool"]["setuptools"]["package-data"]["swarmedge.runtimes"]
    assert (root / "runtimes" / "bundle.schema.json").is_file()


def test_every_config_the_limits_allow_fits_the_schema():
    # swarmedge.limits bounds what can be trained and exported; a looser limit than the
    # schema's would let a model train for hours and then fail to export.
    from swarmedge.limits import FIELD_MAX
    from swarmedge.manifest_schema import schema

    defs = schema()["definitions"]
    checked = 0
    for model_type, fields in FIELD_MAX.items():
        props = defs[f"{model_type}_config"]["properties"]
        for field, limit in fields.items():
            bound = props[field]
            bound = defs[bound["$ref"].rsplit("/", 1)[1]] if "$ref" in bound else bound
            assert bound["maximum"] >= limit, (model_type, field, bound["maximum"], limit)
            checked += 1
    assert defs["text_preprocessing"]["properties"]["seq_len"] == {"$ref": "#/definitions/seq_len"}
    assert defs["seq_len"]["maximum"] >= FIELD_MAX["swarmformer"]["seq_len"]
    assert checked >= 10


def test_export_refuses_a_model_whose_bundle_would_not_open(tiny_text_ckpt, tmp_path, monkeypatch):
    from swarmedge.errors import InputError
    from swarmedge.export import pipeline

    real = pipeline.written_problem

    def too_long(manifest):  # as a checkpoint with seq_len 32768 would give, without training one
        manifest["preprocessing"]["seq_len"] = 32768
        return real(manifest)

    monkeypatch.setattr(pipeline, "written_problem", too_long)
    out = tmp_path / "long.bundle"
    with pytest.raises(InputError, match=r"would not open \(preprocessing.seq_len must be <= 16384"):
        pipeline.export_bundle(tiny_text_ckpt, out, quantize_mode=None)
    assert not out.exists() and not list(tmp_path.iterdir())


# -- the CLI: one line, no traceback, for each kind of refusal --------------------------------

def test_cli_refusals_are_one_line(text_bundle, tmp_path, reliability):
    bundle = copy_bundle(text_bundle, tmp_path)
    m = manifest_of(bundle)
    m["preprocessing"]["seq_len"] = 10_000_000
    write_manifest(bundle, m)
    for command in (["run", str(bundle), "--text", "good film"], ["profile", str(bundle)]):
        r = run_device(command)
        assert r.returncode == 2, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
        assert "preprocessing.seq_len must be <= 16384 (got 10000000)" in r.stderr
        reliability[SECTION]["refused in one line"] += 1
