"""Open a bundle on the device: read the manifest, verify hashes, make ORT sessions.

Every byte onnxruntime or the tokenizer gets is the byte that was hashed: files are read
once (``swarmedge.manifest.read_verified``) and handed over from memory. Models load
without external data (bundles hold single-file ONNX models), and a session is checked
against the manifest's inputs, outputs and labels before it is returned.
"""

import os
from dataclasses import dataclass
from pathlib import Path

from swarmedge.errors import BundleError, InputError
from swarmedge.manifest import PRECISION_FILES, read_manifest, read_verified, verify_file

# onnxruntime's graph optimisation levels by the names the CLI and benchmarks use.
OPT_LEVELS = {"none": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
              "all": "ORT_ENABLE_ALL"}
# A model loaded from bytes looks for external-data files here (by default: the working
# directory!). Pointed at a folder that cannot exist (below the null device, which is no
# folder, so no one can create it), any external-data reference fails to load.
EXTERNAL_DATA_FOLDER = "session.model_external_initializers_file_folder_path"
NO_FOLDER = os.path.join(os.devnull, "swarmedge-bundles-have-no-external-data")
# The manifest's dtype names as onnxruntime names tensor types.
ORT_TYPES = {"float32": "tensor(float)", "float16": "tensor(float16)", "int64": "tensor(int64)",
             "int32": "tensor(int32)", "int8": "tensor(int8)", "uint8": "tensor(uint8)", "bool": "tensor(bool)"}


@dataclass
class Bundle:
    """A bundle directory and its manifest.

    >>> b = Bundle.open("model.bundle")  # doctest: +SKIP
    >>> b.precisions  # doctest: +SKIP
    ['fp32', 'int8']
    """

    path: Path
    manifest: dict

    @classmethod
    def open(cls, path) -> "Bundle":
        """Read and check ``path``'s manifest and directory (``swarmedge.manifest.read_manifest``).

        ``path``: the bundle folder as a str, ``os.PathLike`` or bytes. Raises InputError (one
        line) for anything else, or an empty path, and BundleError (one line) for anything a
        bundle must not be (docs/BUNDLE.md)."""
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, (str, os.PathLike)):
            raise InputError(f"a bundle is opened from the path of its folder (str or os.PathLike), "
                             f"got {type(path).__name__}: pass e.g. 'model.bundle'")
        if not os.fspath(path).strip():  # Path("") would quietly mean the working directory
            raise InputError("the bundle path is empty: pass the bundle's folder, e.g. 'model.bundle'")
        path = Path(path)
        return cls(path, read_manifest(path))

    @property
    def precisions(self) -> list[str]:
        return [p for p, name in PRECISION_FILES.items() if name in self.manifest["files"]]

    @property
    def default_precision(self) -> str:
        """int8 when the bundle has it, unless export measured it disagreeing with fp32 (an int8
        model kept with ``--allow-mismatch``): then fp32, and ``--precision int8`` asks for it."""
        agreement = self.manifest.get("int8_vs_fp32") or {}
        return "int8" if "int8" in self.precisions and agreement.get("ok", True) else "fp32"

    @property
    def labels(self) -> list[str]:
        return self.manifest["labels"]

    def _model_name(self, precision: str) -> str:
        if precision not in PRECISION_FILES:
            raise InputError(f"unknown precision {precision!r}; choose from {', '.join(PRECISION_FILES)}")
        if precision not in self.precisions:
            raise InputError(
                f"bundle {self.path} has no {precision} model (it has {', '.join(self.precisions)}); "
                "re-export with --quantize int8 or pick --precision fp32"
            )
        return PRECISION_FILES[precision]

    def model_path(self, precision: str) -> Path:
        """The ONNX file for ``precision``, its size and sha256 checked against the manifest.

        For its name and size; to run it use :meth:`session` (or :meth:`model_bytes`), which
        loads the verified bytes rather than a path whose file could change in between.
        """
        return verify_file(self.path, self.manifest, self._model_name(precision))

    def model_bytes(self, precision: str) -> bytes:
        """The verified bytes of the ONNX model for ``precision`` (size and sha256 checked)."""
        return read_verified(self.path, self.manifest, self._model_name(precision))

    def read_text(self, name: str) -> str:
        """Bundle file ``name`` (e.g. the tokenizer) as text, from its verified bytes."""
        data = read_verified(self.path, self.manifest, name)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise BundleError(f"{self.path / name} is not UTF-8 text; export the bundle again") from None

    def session(self, precision: str, threads: int | None = None, optimization: str = "all"):
        """An onnxruntime CPU session over the verified model bytes, checked against the manifest.

        ``threads``: onnxruntime's intra-op threads (None: its default). Raises InputError for
        a bad precision/threads/optimization, BundleError when the file fails its checks, the
        model refers to external data, onnxruntime cannot load it, or its inputs/outputs
        are not the manifest's (:func:`check_session`).
        """
        import onnxruntime as ort

        if optimization not in OPT_LEVELS:
            raise InputError(f"unknown optimization {optimization!r}; choose from {', '.join(OPT_LEVELS)}")
        if threads and threads < 1:  # None or 0: onnxruntime's default
            raise InputError(f"--threads must be >= 1, got {threads}")
        name = self._model_name(precision)
        model = read_verified(self.path, self.manifest, name)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPT_LEVELS[optimization])
        opts.log_severity_level = 3
        opts.add_session_config_entry(EXTERNAL_DATA_FOLDER, NO_FOLDER)
        try:
            session = ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise load_error(self.path / name, str(exc)) from None
        check_session(session, self.manifest, self.path / name)
        return session


def load_error(path: Path, message: str) -> BundleError:
    """onnxruntime's failure to load ``path`` as one BundleError line."""
    if "external data" in message.lower() or "ORT in-memory address" in message:
        return BundleError(f"{path} refers to external data files; swarmedge bundles hold single-file ONNX "
                           "models; export it again")
    first = (message.strip().splitlines() or ["no reason given"])[0]
    return BundleError(f"onnxruntime cannot load {path}: {first[:300]}; export the bundle again")


def check_session(session, manifest: dict, path: Path) -> None:
    """Refuse a model whose graph is not the one the manifest describes (e.g. another model's
    ONNX with the hashes updated): inputs must match in order, name, element type and rank;
    each manifest output must exist with its type and rank; a static class dimension of
    the scores output must equal the number of labels; fixed input dimensions must agree, and
    an input dimension the manifest fixes must be fixed in the graph too.
    Raises BundleError (one line)."""
    graph_in = [(i.name, i.type, len(i.shape)) for i in session.get_inputs()]
    want_in = [(t["name"], ORT_TYPES[t["dtype"]], len(t["shape"])) for t in manifest["inputs"]]
    fixed_dims_differ = any(isinstance(d, int) and isinstance(g, int) and d != g
                            for i, t in zip(session.get_inputs(), manifest["inputs"])
                            for d, g in zip(t["shape"], i.shape))
    if graph_in != want_in or fixed_dims_differ:
        raise BundleError(f"{path} takes inputs {_signature(graph_in)} but the manifest says {_signature(want_in)}: "
                          "the model is not this bundle's; export the bundle again")
    for i, (t, g) in enumerate(zip(manifest["inputs"], session.get_inputs())):
        for k, (d, gd) in enumerate(zip(t["shape"], g.shape)):
            if isinstance(d, int) and not isinstance(gd, int):  # the runner would feed only that size
                raise BundleError(f"the manifest fixes inputs[{i}] dim {k} to {d} but {path} takes any size there "
                                  f"({gd or 'unnamed'}); export the bundle again")
    graph_out = {o.name: o for o in session.get_outputs()}
    for t in manifest["outputs"]:
        o = graph_out.get(t["name"])
        if o is None or o.type != ORT_TYPES[t["dtype"]] or len(o.shape) != len(t["shape"]):
            got = f"{o.name} {o.type} rank {len(o.shape)}" if o is not None else "no such output"
            raise BundleError(f"{path}: the manifest's output {t['name']} ({t['dtype']}, rank {len(t['shape'])}) "
                              f"does not match the model ({got}); export the bundle again")
    scores = graph_out[manifest["outputs"][0]["name"]]
    width = scores.shape[-1]
    if isinstance(width, int) and width != len(manifest["labels"]):
        raise BundleError(f"{path} scores {width} classes but the manifest has {len(manifest['labels'])} labels; "
                          "export the bundle again")


def _signature(items) -> str:
    return "(" + ", ".join(f"{n} {t.removeprefix('tensor(').rstrip(')')} rank {r}" for n, t, r in items) + ")"
