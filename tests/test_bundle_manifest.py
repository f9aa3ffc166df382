"""Opening a bundle: the manifest schema, malformed JSON, labels that show nothing or look alike."""

import functools
import json
import os

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from swarmedge.runtimes import Bundle, Classifier

from .bundle_edits import SECTION, copy_bundle, manifest_of, refused, relist, write_manifest
from .conftest import run_device

# -- the manifest schema -----------------------------------------------------------

def _set(path: str, value):
    def mutate(m):
        *parents, last = path.split("/")
        node = m
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if value is _DELETE:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return mutate


_DELETE = object()
TEXT_FAULTS = [  # (mutation, words the one-line error must hold)
    (_set("preprocessing/kind", _DELETE), ["preprocessing", "kind"]),
    (_set("files", [{"sha256": "0" * 64}]), ["files must be an object", "got an array"]),
    (_set("labels", []), ["labels must have at least 2 items"]),
    (_set("labels", ["positive", "positive"]), ["labels must not repeat"]),
    (_set("labels", ["neg\nline", "pos"]), ["labels[0]"]),
    (_set("labels", "negative,positive"), ["labels must be an array"]),
    (_set("preprocessing/multiple_of", 0), ["preprocessing.multiple_of must be >= 1", "(got 0)"]),
    (_set("preprocessing/multiple_of", 3), ["preprocessing.seq_len (32) must be a multiple"]),
    (_set("preprocessing/seq_len", 10_000_000), ["preprocessing.seq_len must be <= 16384 (got 10000000)"]),
    (_set("preprocessing/seq_len", -32), ["preprocessing.seq_len must be >= 1"]),
    (_set("preprocessing/seq_len", 10**400), ["preprocessing.seq_len must be <= 16384"]),
    (_set("preprocessing/seq_len", 32.0), ["preprocessing.seq_len must be an integer (got a number)"]),
    (_set("preprocessing/seq_len", True), ["preprocessing.seq_len must be an integer (got a boolean)"]),
    (_set("preprocessing/seq_len", None), ["preprocessing.seq_len must be an integer (got null)"]),
    (_set("preprocessing/seq_len", "32"), ["preprocessing.seq_len must be an integer (got a string)"]),
    (_set("preprocessing/pad_id", 2), ["preprocessing.pad_id must be 0 (got 2)"]),
    (_set("config/seq_len", 64), ["preprocessing.seq_len (32) must equal config.seq_len (64)"]),
    (_set("outputs/0/shape", ["batch", 1]), ["outputs[0].shape fixes the class count to 1 but labels has 2"]),
    (_set("labels", ["neg\u202eative", "positive"]), ["labels[0] holds U+202E", "bidi"]),
    (_set("labels", ["negative", "posi\u2066tive"]), ["labels[1] holds U+2066"]),
    (_set("labels", ["neg\x9bative", "positive"]), ["labels[0] holds U+009B"]),
    (_set("labels", ["neg\u2028ative", "positive"]), ["labels[0] holds U+2028"]),
    (_set("labels", ["\ud800", "positive"]), ["labels[0] holds U+D800"]),  # a lone surrogate cannot be printed
    (_set("labels", ["negative", " "]), ["labels[1] is blank (' '"]),
    (_set("labels", ["\u3000\t", "positive"]), ["labels[0] holds U+0009"]),
    (_set("labels", ["\u3000\u00a0", "positive"]), ["labels[0] is blank ('\\u3000\\u00a0'"]),
    (_set("labels", ["positive", "5", "5\u200b"]), ["labels[2] ('5\\u200b') looks the same as labels[1] ('5')"]),
    (_set("preprocessing/truncation", "middle"), ["preprocessing.truncation must be one of"]),
    (_set("preprocessing/lowercase", False), ["preprocessing has unknown field \"lowercase\""]),
    (_set("preprocessing/tokenizer", "vocab.txt"), ["preprocessing.tokenizer", "files does not list"]),
    (_set("preprocessing", {"kind": "boids", "image_size": 28, "threshold": 0.5, "habitat_scaling": 10}),
     ["preprocessing.kind must be \"text\""]),
    (_set("model_type", "gpt"), ["model_type must be one of"]),
    (_set("config/num_classes", 3), ["labels has 2 names but config.num_classes is 3"]),
    (_set("config", None), ["config must be an object (got null)"]),
    (_set("inputs", []), ["inputs must have at least 1 items"]),
    (_set("inputs/0/name", "boids"), ["inputs[0].name must be \"input_ids\""]),
    (_set("inputs/0/dtype", "float32"), ["inputs[0].dtype"]),
    (_set("outputs/0/name", "scores"), ["outputs[0].name must be \"logits\""]),
    (_set("files/model.onnx", {"sha256": "xyz", "bytes": 1}), ["sha256 must match"]),
    (_set("files/tokenizer.json/bytes", -1), ["bytes must be >= 0"]),
    (_set("files/tokenizer.json/bytes", 1e30), ["bytes must be an integer"]),
    (_set("files/tokenizer.json/sha256", _DELETE), ["lacks \"sha256\""]),
    (_set("files/a\nb", {"sha256": 5}), ["files.a\\nb"]),  # a key's newline stays escaped: one line
    (lambda m: m["files"].pop("model.onnx"), ["files lacks \"model.onnx\""]),
    (_set("int8_vs_fp32/ok", "yes"), ["int8_vs_fp32.ok must be a boolean"]),
    (_set("int8_vs_fp32", []), ["int8_vs_fp32 must be an object or null"]),
    (_set("created", {"deep": json.loads("[" * 20 + "]" * 20)}), ["created must be a string"]),
]


@pytest.mark.parametrize("mutate,needles", TEXT_FAULTS, ids=[str(i) for i in range(len(TEXT_FAULTS))])
def test_schema_violations_are_one_line_naming_the_field(text_bundle, tmp_path, reliability, mutate, needles):
    bundle = copy_bundle(text_bundle, tmp_path)
    m = manifest_of(bundle)
    mutate(m)
    write_manifest(bundle, m)
    refused(reliability, lambda: Bundle.open(bundle), "manifest.json: ", "export the bundle again", *needles)


@pytest.mark.parametrize("mutate,needles", [
    (_set("preprocessing/threshold", 1.5), ["preprocessing.threshold must be < 1"]),
    (_set("preprocessing/habitat_scaling", 0), ["preprocessing.habitat_scaling must be > 0"]),
    (_set("preprocessing/image_size", 32), ["preprocessing.image_size must be 28"]),
    (_set("config/digits", [5, 6, 7]), ["labels has 2 names but config.digits has 3"]),
    (_set("config/digits", [0, 6]), ["labels (5, 6) name digits but config.digits is [0, 6]"]),
    (_set("config/digits", [6, 5]), ["labels (5, 6) name digits but config.digits is [6, 5]"]),
    (_set("preprocessing/habitat_scaling", 2), ["preprocessing.habitat_scaling (2) must equal config.habitat_scaling"]),
    (_set("outputs/0/shape", ["batch", 3]), ["outputs[0].shape fixes the class count to 3 but labels has 2"]),
    (_set("inputs", [{"name": "boids", "dtype": "float32", "shape": ["batch", "boids", 2]}]),
     ["inputs must have at least 2 items"]),
    (_set("outputs/0/shape", ["batch"]), ["outputs[0].shape must have at least 2 items"]),
])
def test_boids_schema_violations(boids_bundle, tmp_path, reliability, mutate, needles):
    bundle = copy_bundle(boids_bundle, tmp_path)
    m = manifest_of(bundle)
    mutate(m)
    write_manifest(bundle, m)
    refused(reliability, lambda: Bundle.open(bundle), *needles)


@pytest.mark.parametrize("text,needles", [
    ('{"format": "swarmedge.bundle", "format_version": 1, "labels": [NaN]}', ["NaN is not a JSON number"]),
    ('{"format": "swarmedge.bundle", "format_version": 1, "x": Infinity}', ["Infinity"]),
    ('{"format": "swarmedge.bundle", "format_version": 1, "format": "swarmedge.bundle"}', ["'format' appears twice"]),
    ("[" * 100_000 + "]" * 100_000, ["manifest.json nests more than 32 levels"]),
    # 500 levels parse, but fastjsonschema's uniqueItems recursed into a RecursionError on them
    ('{"format": "swarmedge.bundle", "format_version": 1, "labels": [%s, %s]}' % (("[" * 500 + "]" * 500,) * 2),
     ["nests more than 32 levels"]),
    ('{"format": "swarmedge.bundle", "format_version": 2}', ["bundle format 2, this swarmedge reads 1"]),
    ('{"format": "swarmedge.bundle", "format_version": true}', ["bundle format True"]),
    ('{"format": "swarmedge.bundle"}', ["bundle format None"]),
    ("[1, 2]", ["not a swarmedge bundle manifest"]),
    ('"swarmedge.bundle"', ["not a swarmedge bundle manifest"]),
    ('{"format": "swarmedge.bundle", "format_version": 1, "n": ' + "9" * 5000 + "}",
     ["manifest.json holds a number with more than 4,300 digits; export the bundle again"]),
    # the newcomer's case: Python's own message was cut inside its parentheses and named sys.set_int_max_str_digits
    ('{"format": "swarmedge.bundle", "format_version": 1' + "0" * 5000 + "}", ["more than 4,300 digits"]),
    ('{"format": "swarmedge.bundle", "format_version": -1' + "0" * 5000 + "}", ["more than 4,300 digits"]),
    ('{"format": "swarmedge.bundle", "format_version": 1, "x": 1e400}',
     ["holds a number too large for a float (1e400)"]),
    ('{"format": "swarmedge.bundle", "format_version": 1, "x": -' + "9" * 400 + '.5}', ["too large for a float"]),
    ('{"format": "swarmedge.bundle", "format_version": 1,}', ["corrupt (Expecting property name enclosed in double "
                                                              "quotes at line 1, column 52)"]),
    ('{"format": "swarmedge.bundle', ["corrupt (Unterminated string starting at line 1, column 12)"]),
    ('{"format": "a\x01"}', ["corrupt (Invalid control character at line 1, column 14)"]),
    ("", ["corrupt (Expecting value at line 1, column 1)"]),
    ('{"k((": 1, "k((": 2}', ["corrupt (key 'k((' appears twice)"]),
])
def test_malformed_json_is_one_line(text_bundle, tmp_path, reliability, text, needles):
    bundle = copy_bundle(text_bundle, tmp_path)
    (bundle / "manifest.json").write_text(text, encoding="utf-8")
    message = refused(reliability, lambda: Bundle.open(bundle), *needles)
    outside_quotes = message.replace("'k(('", "")
    assert outside_quotes.count("(") == outside_quotes.count(")"), message  # no parenthesis left open
    assert "sys." not in message and "char " not in message, message  # no Python internals, no nested "(char N)"


def test_non_utf8_manifest(text_bundle, tmp_path, reliability):
    bundle = copy_bundle(text_bundle, tmp_path)
    (bundle / "manifest.json").write_bytes(b'{"format": "\xff"}')
    refused(reliability, lambda: Bundle.open(bundle), "not UTF-8")


def test_a_manifest_with_a_byte_order_mark_says_so(text_bundle, tmp_path, reliability):
    bundle = copy_bundle(text_bundle, tmp_path)
    data = (bundle / "manifest.json").read_bytes()
    (bundle / "manifest.json").write_bytes(b"\xef\xbb\xbf" + data)
    message = refused(reliability, lambda: Bundle.open(bundle), "starts with a byte-order mark",
                       "save it as UTF-8 without BOM")
    assert "utf-8-sig" not in message


@pytest.mark.parametrize("which,field,number", [
    ("text", "format_version", "1"), ("text", "pad_id", "0"), ("text", "seq_len", "32"),
    ("boids", "format_version", "1"), ("boids", "image_size", "28"), ("boids", "bytes", None),
])
@pytest.mark.parametrize("written", [".0", "e0"])
def test_a_float_where_an_integer_is_required_is_refused(text_bundle, boids_bundle, tmp_path, reliability,
                                                         which, field, number, written):
    # json.loads gives 1.0 for both spellings, which equals 1: the schema's const alone let it through
    bundle = copy_bundle(text_bundle if which == "text" else boids_bundle, tmp_path)
    text = (bundle / "manifest.json").read_text(encoding="utf-8")
    number = number or str(manifest_of(bundle)["files"]["model.onnx"]["bytes"])
    old = f'"{field}": {number}'
    assert old in text
    (bundle / "manifest.json").write_text(text.replace(old, old + written, 1), encoding="utf-8")
    refused(reliability, lambda: Bundle.open(bundle), f"{field} must be an integer (got a number)")


def test_printable_labels_of_any_script_are_accepted(text_bundle, tmp_path):
    bundle = copy_bundle(text_bundle, tmp_path)
    m = manifest_of(bundle)
    m["labels"] = ["n\u00e9gatif \U0001F468\u200d\U0001F469\u200d\U0001F467", "\u0645\u062b\u0628\u062a"]  # a ZWJ emoji
    write_manifest(bundle, m)
    assert Classifier(bundle).classify_texts(["good film"])[0].label in m["labels"]


# Each of these prints nothing on its own: a class named by one alone showed as a blank label.
INVISIBLE = ["\u200b", "\u2060", "\u00ad", "\u3164", "\u2800", "\ufe0f", "\ufeff", "\u0301", "\u115f", "\uffa0",
             "\U000e0041", "\ue000"]


@pytest.mark.parametrize("char", INVISIBLE, ids=[f"U+{ord(c):04X}" for c in INVISIBLE])
def test_a_label_that_shows_nothing_is_refused(text_bundle, tmp_path, reliability, char):
    bundle = copy_bundle(text_bundle, tmp_path)
    m = manifest_of(bundle)
    m["labels"] = ["negative", char + "\u3000" + char]
    write_manifest(bundle, m)
    message = refused(reliability, lambda: Bundle.open(bundle), "labels[1] is blank (", "no visible character")
    assert char not in message, message  # the message itself is visible: the character is written as an escape
    assert (f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}") in message


@pytest.mark.parametrize("first,second", [
    ("5", "5\u200b"), ("5", "\u20605"), ("5", "5\ufe0f"), ("cat", "c\u00adat"), ("cat", "cat\u3164"), ("5", "\uff15"),
    ("\u00e9", "e\u0301"), ("fi", "\ufb01"), ("a b", "a\u00a0b"), ("dog", " dog "),
])
def test_labels_that_look_the_same_are_refused(boids_bundle, tmp_path, reliability, first, second):
    bundle = copy_bundle(boids_bundle, tmp_path)
    m = manifest_of(bundle)
    m["labels"], m["config"]["digits"] = [first, second], [0, 1]
    write_manifest(bundle, m)
    refused(reliability, lambda: Bundle.open(bundle), "labels[1] (", "looks the same as labels[0] (",
             "differ visibly; export the bundle again")


@pytest.mark.parametrize("labels", [
    ["\U0001F468\u200d\U0001F469\u200d\U0001F467", "\U0001F468\U0001F469"],  # ZWJ family vs two people: distinct
    ["\u2764\ufe0f", "\u2B50"], ["e\u0301t\u00e9", "hiver"], ["Cat", "cat"], ["5", "55"], ["pos\u00aditive", "neg"],
    ["\U0001FAE8", "\U0001FAE9"],  # Unicode 15: unassigned in Python 3.11's tables, must not be refused there
])
def test_visible_distinct_labels_are_accepted(boids_bundle, tmp_path, labels):
    bundle = copy_bundle(boids_bundle, tmp_path)
    m = manifest_of(bundle)
    m["labels"], m["config"]["digits"] = labels, [0, 1]
    write_manifest(bundle, m)
    assert Bundle.open(bundle).labels == labels


@settings(max_examples=300, deadline=None)
@given(label=st.text(min_size=1, max_size=12), hidden=st.sampled_from(INVISIBLE[:7] + ["\u034f", "\U000e0100"]),
       at=st.integers(min_value=0, max_value=12))
def test_hiding_a_character_in_an_accepted_label_never_makes_a_second_class(label, hidden, at):
    from swarmedge.label_names import label_problem

    assume(label_problem([label]) is None and hidden not in label)
    twin = label[:at] + hidden + label[at:]
    message = label_problem([label, twin]) or ""
    assert "looks the same as labels[0]" in message, (label, twin, message)
    assert "\n" not in message and hidden not in message


def test_run_prints_no_look_alike_label(boids_bundle, tmp_path, reliability):
    # the newcomer's path: an edited boid bundle, then `swarmedge run`, in a process without torch
    bundle = copy_bundle(boids_bundle, tmp_path)
    m = manifest_of(bundle)
    m["labels"], m["config"]["digits"] = ["5", "5\u200b"], [0, 1]
    write_manifest(bundle, m)
    image = tmp_path / "five.png"
    Image.fromarray(np.full((28, 28), 255, dtype=np.uint8)).save(image)
    r = run_device(["run", str(bundle), "--image", str(image), "--json"])
    assert r.returncode != 0 and r.stdout == "", (r.stdout, r.stderr)
    assert r.stderr.count("\n") == 1, r.stderr
    assert "labels[1] ('5\\u200b') looks the same as labels[0] ('5')" in r.stderr, r.stderr
    reliability[SECTION]["refused in one line"] += 1


def test_boid_labels_that_are_not_digits_take_class_slots(boids_bundle, tmp_path):
    # training gives classes named "cat", "dog" the slots 0, 1: such labels say nothing about digits
    bundle = copy_bundle(boids_bundle, tmp_path)
    m = manifest_of(bundle)
    m["labels"], m["config"]["digits"] = ["cat", "dog"], [0, 1]
    write_manifest(bundle, m)
    assert Bundle.open(bundle).labels == ["cat", "dog"]


@pytest.mark.parametrize("mutate,needle", [
    (_set("preprocessing/pad_id", 2), "preprocessing.pad_id must be 0"),
    (_set("config/seq_len", 64), "must equal config.seq_len"),
    (_set("labels", ["neg\u202eative", "positive"]), "labels[0] holds U+202E"),
    (_set("labels", ["\u200b", "positive"]), "labels[0] is blank ('\\u200b'"),
    (_set("labels", ["negative", "negative\ufe0f"]), "labels[1] ('negative\\ufe0f') looks the same as labels[0]"),
    (_set("outputs/0/shape", ["batch", 3]), "fixes the class count to 3"),
])
def test_the_exporter_checks_the_same_rules(text_bundle, mutate, needle):
    from swarmedge.manifest import written_problem

    m = manifest_of(text_bundle)
    assert written_problem(m) is None
    mutate(m)
    assert needle in (written_problem(m) or "")


def test_unlisted_fifos_and_symlinks_are_named_for_what_they_are(text_bundle, tmp_path, reliability):
    bundle = copy_bundle(text_bundle, tmp_path)
    os.mkfifo(bundle / "pipe")
    refused(reliability, lambda: Bundle.open(bundle), "holds a FIFO (named pipe) 'pipe'", "does not list")
    (bundle / "pipe").unlink()
    (bundle / "link.onnx").symlink_to("model.onnx")
    refused(reliability, lambda: Bundle.open(bundle), "holds a symbolic link 'link.onnx'", "does not list")


def test_a_tokenizer_id_outside_the_vocabulary_is_refused_when_loaded(text_bundle, tmp_path, reliability):
    from swarmedge.runtimes.text import TextEncoder

    bundle = copy_bundle(text_bundle, tmp_path)
    m = manifest_of(bundle)
    pre, vocab_size = m["preprocessing"], m["config"]["vocab_size"]
    tokenizer = json.loads((bundle / "tokenizer.json").read_text(encoding="utf-8"))
    TextEncoder.for_preprocessing(pre, json.dumps(tokenizer), vocab_size=vocab_size)  # the exported one fits
    for id_, fits in ((vocab_size - 1, True), (vocab_size, False), (100_000_000, False)):  # the edge, then past it
        tokenizer["model"]["vocab"]["zzzhuge"] = id_
        (bundle / "tokenizer.json").write_text(json.dumps(tokenizer), encoding="utf-8")
        relist(bundle, m, "tokenizer.json")
        write_manifest(bundle, m)
        load = functools.partial(TextEncoder.for_preprocessing, pre, Bundle.open(bundle).read_text("tokenizer.json"),
                                 vocab_size=vocab_size)
        if fits:
            load()
        else:
            refused(reliability, load, "tokenizer.json maps 'zzzhuge' to id", f"config.vocab_size {vocab_size}")
    # and where users meet it: the API's first text, before the token is ever used
    refused(reliability, lambda: Classifier(bundle).classify_texts(["the film"]), "tokenizer.json maps 'zzzhuge'")
