"""Exact clean-ups of the exported ONNX graph, each checked afterwards by the parity test.

- ``fold_constant_transposes``: the exporter transposes a weight at run time when the same
  weight feeds several MatMuls (SwarmFormer's local step runs T_local times with one set of
  weights). Folding the transpose makes B a constant, so the quantizer can quantize them.
- ``dedupe_initializers``: the recurrent boid block's weights appear once per step.
- ``strip_initializer_value_info``: dynamo exports store value_info for initializers, which
  makes onnxruntime's quantizer fail shape inference ("Inferred shape and existing shape differ").
"""

import hashlib

import onnx
from onnx import numpy_helper


def fold_constant_transposes(model: onnx.ModelProto) -> int:
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    consumers: dict[str, int] = {}
    for n in g.node:
        for x in n.input:
            consumers[x] = consumers.get(x, 0) + 1
    folded, keep = 0, []
    for n in g.node:
        if n.op_type == "Transpose" and n.input[0] in inits:
            perm = next((list(a.ints) for a in n.attribute if a.name == "perm"), None)
            arr = numpy_helper.to_array(inits[n.input[0]])
            g.initializer.append(numpy_helper.from_array(arr.transpose(perm).copy(), n.output[0]))
            consumers[n.input[0]] -= 1
            folded += 1
            continue
        keep.append(n)
    del g.node[:]
    g.node.extend(keep)
    unused = {name for name, count in consumers.items() if count == 0 and name in inits}
    _remove_initializers(g, unused)
    return folded


def dedupe_initializers(model: onnx.ModelProto) -> int:
    g = model.graph
    graph_io = {v.name for v in list(g.input) + list(g.output)}
    first: dict[tuple, str] = {}
    rename: dict[str, str] = {}
    for init in g.initializer:
        if init.name in graph_io:
            continue
        key = (init.data_type, tuple(init.dims), hashlib.sha256(init.raw_data or init.SerializeToString()).digest())
        if key in first:
            rename[init.name] = first[key]
        else:
            first[key] = init.name
    for n in g.node:
        for i, x in enumerate(n.input):
            if x in rename:
                n.input[i] = rename[x]
    _remove_initializers(g, set(rename))
    return len(rename)


def strip_initializer_value_info(model: onnx.ModelProto) -> None:
    inits = {i.name for i in model.graph.initializer}
    keep = [v for v in model.graph.value_info if v.name not in inits]
    del model.graph.value_info[:]
    model.graph.value_info.extend(keep)


def set_metadata(model: onnx.ModelProto, entries: dict[str, str]) -> None:
    existing = {p.key: p for p in model.metadata_props}
    for key, value in entries.items():
        if key in existing:
            existing[key].value = value
        else:
            model.metadata_props.add(key=key, value=value)


def _remove_initializers(g, names: set[str]) -> None:
    if not names:
        return
    keep = [i for i in g.initializer if i.name not in names]
    del g.initializer[:]
    g.initializer.extend(keep)
    vi = [v for v in g.value_info if v.name not in names]
    del g.value_info[:]
    g.value_info.extend(vi)
