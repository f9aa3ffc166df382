"""swarmedge's side of a peer runtime: a worker process in the peer's own venv (worker.py).

A peer variant looks like any other to the benchmark: ``make(threads)`` gives a runner, called
with feeds for scores. Its runner also has ``timed(feeds, calls)``, which the interleaved
timing uses so that the worker clocks its own calls and the pipe is not part of the latency.
"""

import atexit
import hashlib
import json
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np

WORKER = Path(__file__).with_name("worker.py")


class PeerError(RuntimeError):
    pass


class Peer:
    """One peer's worker process: ``python worker.py ADAPTER`` in the peer's venv."""

    def __init__(self, name: str, python: str, adapter: Path, log: Path):
        self.name, self.adapter, self.python = name, adapter, python
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = tempfile.TemporaryDirectory(prefix="swarmedge-peer-")
        self._feeds, self._feeds_path, self._count = None, None, 0
        self.generation = 0  # bumped when a died worker is replaced: its loaded runners are gone
        self._start()
        atexit.register(self.close)

    def _start(self) -> None:
        with open(self.log, "ab") as err:
            self._proc = subprocess.Popen([self.python, str(WORKER), str(self.adapter)], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=err, text=True)
        self.generation += 1

    def live_generation(self) -> int:
        """The running worker's generation, after replacing a worker that died (one variant
        crashed it: the others go on in a fresh one, once their runners load again)."""
        if self._proc.poll() is not None:
            self._start()
        return self.generation

    def ask(self, op: str, **request) -> dict:
        self.live_generation()
        self._proc.stdin.write(json.dumps({"op": op, **request}) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:  # the process died mid-request (e.g. an abort inside the runtime)
            code = self._proc.wait()
            raise PeerError(f"{self.name} worker died during {op!r} (exit code {code}); see {self.log}")
        reply = json.loads(line)
        if "error" in reply:
            raise PeerError(f"{self.name}: {reply['error']}")
        return reply

    def feeds_path(self, feeds: dict) -> str:
        """The .npz the worker reads ``feeds`` from, written once per feeds object."""
        if feeds is not self._feeds:
            self._count += 1
            path = Path(self._tmp.name) / f"feeds-{self._count}.npz"
            np.savez(path, **feeds)
            if self._feeds_path:
                Path(self._feeds_path).unlink(missing_ok=True)
            self._feeds, self._feeds_path = feeds, str(path)
        return self._feeds_path

    def scores(self, key: str, feeds: dict) -> np.ndarray:
        out = Path(self._tmp.name) / "scores.npy"
        self.ask("scores", key=key, feeds=self.feeds_path(feeds), out=str(out))
        return np.load(out)

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._tmp.cleanup()


class RemoteRunner:
    """feeds -> scores through the peer's worker; ``timed`` clocks calls inside the worker."""

    def __init__(self, peer: Peer, variant: str, artifact: str, threads: int):
        self.peer, self.key = peer, f"{variant} @ {threads}"
        self._load = {"key": self.key, "variant": variant, "artifact": artifact, "threads": threads}
        self._loaded_in = None
        self._ensure_loaded()

    def _ensure_loaded(self) -> None:
        if self._loaded_in != self.peer.live_generation():  # first use, or the worker was replaced
            self.peer.ask("load", **self._load)
            self._loaded_in = self.peer.generation

    def __call__(self, feeds: dict) -> np.ndarray:
        self._ensure_loaded()
        return self.peer.scores(self.key, feeds)

    def timed(self, feeds: dict, calls: int) -> list[float]:
        self._ensure_loaded()
        return self.peer.ask("time", key=self.key, feeds=self.peer.feeds_path(feeds), calls=calls)["seconds"]


def build_all(peer: Peer, sources: dict, calibration: list[dict], out_dir: Path, log=print) -> dict[str, dict]:
    """Every variant the peer offers, built into ``out_dir`` (cached by adapter and sources):
    name -> {"note", "artifact", "bytes"} or, where building failed, {"note", "error"}."""
    variants = peer.ask("variants")["variants"]
    key = hashlib.sha256(peer.adapter.read_bytes() + json.dumps(sources, sort_keys=True).encode()).hexdigest()[:12]
    out_dir = out_dir / f"{peer.name}-{key}"
    out_dir.mkdir(parents=True, exist_ok=True)
    calib_path = out_dir / "calibration.npz"
    if not calib_path.is_file():
        np.savez(calib_path, **{f"b{i}_{k}": v for i, feeds in enumerate(calibration) for k, v in feeds.items()})
    built = {}
    for name, note in variants.items():
        folder = out_dir / re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
        record = folder / "built.json"
        if not record.is_file():
            log(f"  building {name}")
            folder.mkdir(exist_ok=True)
            try:
                result = {"artifact": peer.ask("build", variant=name, sources=sources,
                                               calibration=str(calib_path), out=str(folder))["artifact"]}
            except PeerError as e:  # shown in the report with what broke, not dropped
                result = {"error": str(e)}
                log(f"  {name}: build failed: {e}")
            record.write_text(json.dumps(result))
        result = json.loads(record.read_text())
        if "artifact" in result:
            result["bytes"] = _size(Path(result["artifact"]))
        built[name] = {"note": note, **result}
    return built


def _size(path: Path) -> int:
    """Bytes of the model: a folder's files, or every file named like the artifact beside it
    (OpenVINO's model.xml is nothing without its model.bin)."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return sum(p.stat().st_size for p in path.parent.glob(f"{path.stem}.*") if p.is_file())
