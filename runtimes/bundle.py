"""Open a bundle on the device: read the manifest, verify hashes, make ORT sessions."""

from dataclasses import dataclass
from pathlib import Path

from swarmedge.errors import BundleError, InputError
from swarmedge.manifest import PRECISION_FILES, read_manifest, verify_file

# onnxruntime's graph optimisation levels by the names the CLI and benchmarks use.
OPT_LEVELS = {"none": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
              "all": "ORT_ENABLE_ALL"}


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

    def model_path(self, precision: str) -> Path:
        """The verified ONNX file for ``precision`` (sha256 checked against the manifest)."""
        if precision not in PRECISION_FILES:
            raise InputError(f"unknown precision {precision!r}; choose from {', '.join(PRECISION_FILES)}")
        if precision not in self.precisions:
            raise InputError(
                f"bundle {self.path} has no {precision} model (it has {', '.join(self.precisions)}); "
                "re-export with --quantize int8 or pick --precision fp32"
            )
        return verify_file(self.path, self.manifest, PRECISION_FILES[precision])

    def read_text(self, name: str) -> str:
        return verify_file(self.path, self.manifest, name).read_text(encoding="utf-8")

    def session(self, precision: str, threads: int | None = None, optimization: str = "all"):
        """An onnxruntime CPU session over the verified model file."""
        import onnxruntime as ort

        path = self.model_path(precision)
        opts = ort.SessionOptions()
        if threads:
            if threads < 1:
                raise InputError(f"--threads must be >= 1, got {threads}")
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPT_LEVELS[optimization])
        opts.log_severity_level = 3
        try:
            return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise BundleError(f"onnxruntime cannot load {path}: {str(exc).splitlines()[0]}") from None
