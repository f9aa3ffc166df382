"""Opening a bundle: confinement to its folder, sizes and hashes before use, external data."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from swarmedge.manifest import MAX_MANIFEST_BYTES
from swarmedge.runtimes import Bundle, Classifier

from .bundle_edits import copy_bundle, manifest_of, opener, refused, relist, write_manifest

# -- confinement --------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../tokenizer.json", "/etc/hostname", "sub/tokenizer.json", "sub\\tokenizer.json",
                                  "..", ".hidden.json", "C:tokenizer.json", "tok\x00en.json", "manifest.json", ""])
def test_file_names_outside_a_flat_bundle_are_refused(text_bundle, tmp_path, reliability, name):
    bundle = copy_bundle(text_bundle, tmp_path)
    m = manifest_of(bundle)
    m["files"][name] = m["files"].pop("tokenizer.json")
    m["preprocessing"]["tokenizer"] = name
    write_manifest(bundle, m)
    msg = refused(reliability, lambda: Bundle.open(bundle), "names", "not a plain file name inside the bundle")
    assert json.dumps(name) in msg


def test_a_tokenizer_outside_the_bundle_is_never_read(text_bundle, tmp_path, reliability):
    # The reported fault: files {"../tok.json": ...} with a matching hash made run read a file
    # outside the bundle. A FIFO there would block any reader forever, so passing proves no read.
    outside = tmp_path / "tok.json"
    os.mkfifo(outside)
    bundle = copy_bundle(text_bundle, tmp_path)
    m = manifest_of(bundle)
    m["files"]["../tok.json"] = m["files"].pop("tokenizer.json")
    m["preprocessing"]["tokenizer"] = "../tok.json"
    write_manifest(bundle, m)
    refused(reliability, lambda: Classifier(bundle).classify_texts(["good film"]), "../tok.json")


@pytest.mark.parametrize("target", ["outside", "inside"])
def test_symlinks_are_refused_not_followed(text_bundle, tmp_path, reliability, target):
    bundle = copy_bundle(text_bundle, tmp_path)
    real = tmp_path / "tokenizer.json" if target == "outside" else bundle / "tok.real"
    shutil.copy(bundle / "tokenizer.json", real)  # same bytes: the hash would pass if followed
    if target == "inside":
        m = manifest_of(bundle)
        relist(bundle, m, "tok.real")
        write_manifest(bundle, m)
    (bundle / "tokenizer.json").unlink()
    (bundle / "tokenizer.json").symlink_to(real)
    refused(reliability, lambda: Bundle.open(bundle), "tokenizer.json", "symbolic link")


def test_a_symlinked_manifest_is_refused(text_bundle, tmp_path, reliability):
    bundle = copy_bundle(text_bundle, tmp_path)
    shutil.move(bundle / "manifest.json", tmp_path / "elsewhere.json")
    (bundle / "manifest.json").symlink_to(tmp_path / "elsewhere.json")
    refused(reliability, lambda: Bundle.open(bundle), "manifest.json", "symbolic link")


def test_a_fifo_in_place_of_a_model_is_refused_without_blocking(text_bundle, tmp_path, reliability):
    bundle = copy_bundle(text_bundle, tmp_path)
    (bundle / "model.onnx").unlink()
    os.mkfifo(bundle / "model.onnx")
    refused(reliability, lambda: Bundle.open(bundle), "model.onnx", "is a FIFO (named pipe)")


def test_a_fifo_manifest_is_refused_without_blocking(text_bundle, tmp_path, reliability):
    bundle = copy_bundle(text_bundle, tmp_path)
    (bundle / "manifest.json").unlink()
    os.mkfifo(bundle / "manifest.json")
    refused(reliability, lambda: Bundle.open(bundle), "manifest.json", "is a FIFO (named pipe)")


@pytest.mark.parametrize("extra", ["notes.txt", ".DS_Store", "weights.bin", "sub/"])
def test_unlisted_entries_are_refused(text_bundle, tmp_path, reliability, extra):
    bundle = copy_bundle(text_bundle, tmp_path)
    if extra.endswith("/"):
        (bundle / extra).mkdir()
    else:
        (bundle / extra).write_bytes(b"x")
    refused(reliability, lambda: Bundle.open(bundle), repr(extra.rstrip("/")), "does not list", "remove it")


# -- sizes and hashes before use, and only the verified bytes are used ------------------

class _CountingReads:
    """Wraps the file objects ``bundle_files`` reads through: records each read's size, and can
    make the file grow after its size was checked (as a writer still copying it would)."""

    def __init__(self, monkeypatch, grow: Path | None = None):
        self.sizes: list[int] = []
        real = os.fdopen

        def fdopen(*args, **kwargs):
            f = real(*args, **kwargs)
            outer = self

            class Wrapped:
                def __enter__(self):
                    return self

                def __exit__(self, *exc):
                    f.close()

                def read(self, n=-1):
                    if grow is not None:
                        with open(grow, "ab") as g:
                            g.write(b"\0" * 1000)
                    data = f.read(n)
                    outer.sizes.append(len(data))
                    return data

            return Wrapped()

        monkeypatch.setattr(os, "fdopen", fdopen)


def test_a_file_of_another_size_is_refused_unread(text_bundle, tmp_path, reliability, monkeypatch):
    bundle = copy_bundle(text_bundle, tmp_path)
    b = Bundle.open(bundle)  # opened intact; the file grows afterwards
    with open(bundle / "model.onnx", "ab") as f:
        f.write(b"\0" * 4096)
    reads = _CountingReads(monkeypatch)
    refused(reliability, lambda: b.session("fp32"), "model.onnx", "bytes, the manifest says")
    assert reads.sizes == []  # refused on its size (fstat): not one byte read


@pytest.mark.parametrize("name", ["model.onnx", "model.int8.onnx", "tokenizer.json"])
def test_a_listed_file_of_another_size_is_refused_at_open(text_bundle, tmp_path, reliability, name):
    # Even a file this run would not read (fp32 when int8 is the default): an incomplete copy shows at once.
    bundle = copy_bundle(text_bundle, tmp_path)
    with open(bundle / name, "r+b") as f:
        f.truncate(7)
    refused(reliability, lambda: Bundle.open(bundle), name, "7 bytes, the manifest says")


def test_a_file_growing_while_read_is_refused_after_one_extra_byte(text_bundle, tmp_path, reliability,
                                                                    monkeypatch):
    bundle = copy_bundle(text_bundle, tmp_path)
    b = Bundle.open(bundle)
    size = b.manifest["files"]["model.onnx"]["bytes"]
    reads = _CountingReads(monkeypatch, grow=bundle / "model.onnx")
    refused(reliability, lambda: b.session("fp32"), "model.onnx", f"{size + 1} bytes read")
    assert reads.sizes == [size + 1]


def test_same_size_other_bytes_is_refused(text_bundle, tmp_path, reliability):
    bundle = copy_bundle(text_bundle, tmp_path)
    data = bytearray((bundle / "tokenizer.json").read_bytes())
    data[-2] ^= 1
    (bundle / "tokenizer.json").write_bytes(bytes(data))
    refused(reliability, lambda: Bundle.open(bundle).read_text("tokenizer.json"), "sha256 differs")


def test_onnxruntime_gets_the_verified_bytes_not_a_path(text_bundle, monkeypatch):
    import onnxruntime as ort

    seen = []
    real = ort.InferenceSession
    monkeypatch.setattr(ort, "InferenceSession", lambda model, *a, **k: seen.append(model) or real(model, *a, **k))
    Bundle.open(text_bundle).session("int8")
    assert seen == [(text_bundle / "model.int8.onnx").read_bytes()]


def test_an_oversized_manifest_is_refused_unparsed(text_bundle, tmp_path, reliability):
    bundle = copy_bundle(text_bundle, tmp_path)
    m = manifest_of(bundle)
    m["padding"] = "x" * MAX_MANIFEST_BYTES
    write_manifest(bundle, m)
    refused(reliability, lambda: Bundle.open(bundle), "manifest.json", "more than any")


# -- external data -----------------------------------------------------------------

def _external_data_model(folder: Path, location: str = "w.bin") -> bytes:
    """An ONNX model (same input/output as the text model) whose only weight lives in ``location``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnx.external_data_helper import convert_model_to_external_data

    table = numpy_helper.from_array(np.ones((24, 2), dtype=np.float32), "table")
    nodes = [helper.make_node("Gather", ["table", "input_ids"], ["emb"]),
             helper.make_node("ReduceMean", ["emb"], ["logits"], axes=[1], keepdims=0)]
    graph = helper.make_graph(nodes, "ext", [helper.make_tensor_value_info("input_ids", TensorProto.INT64,
                                                                           ["batch", "length"])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])], [table])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    convert_model_to_external_data(model, all_tensors_to_one_file=True, location=location, size_threshold=0)
    onnx.save_model(model, str(folder / "model.onnx"))  # writes folder/w.bin beside it
    return (folder / "model.onnx").read_bytes()


@pytest.mark.parametrize("w_bin", ["listed", "unlisted", "absent", "in the working directory"])
def test_external_data_models_are_refused(text_bundle, tmp_path, reliability, monkeypatch, w_bin):
    bundle = copy_bundle(text_bundle, tmp_path)
    _external_data_model(bundle)
    m = manifest_of(bundle)
    relist(bundle, m, "model.onnx")
    if w_bin == "listed":
        relist(bundle, m, "w.bin")
    elif w_bin == "absent":
        (bundle / "w.bin").unlink()
    elif w_bin == "in the working directory":  # onnxruntime's default for a model given as bytes
        shutil.move(bundle / "w.bin", tmp_path / "w.bin")
        monkeypatch.chdir(tmp_path)
    write_manifest(bundle, m)
    needles = ("w.bin", "does not list") if w_bin == "unlisted" else ("external data", "single-file ONNX")
    refused(reliability, opener(bundle), *needles)
