"""A peer runtime's side of the benchmark: runs inside the peer's own venv.

    python worker.py ADAPTER.py      (JSON requests on stdin, one JSON reply per line on stdout)

The peers (OpenVINO, ExecuTorch) must not share swarmedge's venv, so the benchmark drives
them through this worker. It times calls itself, so the pipe between the processes is never
part of a peer's latency. Requests (paths are .npz files of named arrays):

    {"op": "variants"}                        -> {"variants": {name: note}, "operators": bool}
    {"op": "build", "variant", "sources", "calibration", "out"} -> {"artifact": path}
    {"op": "load", "key", "variant", "artifact", "threads"}     -> {}
    {"op": "time", "key", "feeds", "calls"}                     -> {"seconds": [...]}
    {"op": "scores", "key", "feeds", "out"}                     -> {} (scores saved as .npy)
    {"op": "operators", "variant", "artifact", "feeds", "repeat"} -> {"operators": [...]}

An exception becomes {"error": "..."}: the benchmark decides what to do with it.
"""

import importlib.util
import json
import os
import sys
import time
import traceback

import numpy as np


def _load_adapter(path: str):
    spec = importlib.util.spec_from_file_location("peer_adapter", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _feeds(path: str, cache: dict) -> dict:
    if path not in cache:  # a timing run sends the same feeds round after round
        cache.clear()
        with np.load(path) as z:
            cache[path] = {k: z[k] for k in z.files}
    return cache[path]


def serve(adapter, replies) -> None:
    runners, feeds_cache = {}, {}
    for line in sys.stdin:
        req = json.loads(line)
        try:
            op = req["op"]
            if op == "variants":
                reply = {"variants": adapter.VARIANTS, "operators": hasattr(adapter, "operators")}
            elif op == "build":
                with np.load(req["calibration"]) as z:
                    # calibration batches are saved as b<i>_<input name>
                    batches: dict[int, dict] = {}
                    for key in z.files:
                        i, name = key[1:].split("_", 1)
                        batches.setdefault(int(i), {})[name] = z[key]
                calibration = [batches[i] for i in sorted(batches)]
                reply = {"artifact": adapter.build(req["variant"], req["sources"], calibration, req["out"])}
            elif op == "load":
                runners[req["key"]] = adapter.load(req["variant"], req["artifact"], req["threads"])
                reply = {}
            elif op == "time":
                run, feeds = runners[req["key"]], _feeds(req["feeds"], feeds_cache)
                seconds = []
                for _ in range(req["calls"]):
                    t0 = time.perf_counter()
                    run(feeds)
                    seconds.append(time.perf_counter() - t0)
                reply = {"seconds": seconds}
            elif op == "scores":
                scores = runners[req["key"]](_feeds(req["feeds"], feeds_cache))
                np.save(req["out"], np.asarray(scores, dtype=np.float32))
                reply = {}
            elif op == "operators":
                with np.load(req["feeds"]) as z:
                    feeds = {k: z[k] for k in z.files}
                reply = {"operators": adapter.operators(req["variant"], req["artifact"], feeds, req["repeat"])}
            else:
                reply = {"error": f"unknown request {op!r}"}
        except Exception as e:  # reported to the benchmark, which names the peer and variant
            traceback.print_exc(file=sys.stderr)
            reply = {"error": f"{type(e).__name__}: {e}".strip()}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


def main() -> None:
    # Replies go to a private copy of stdout; anything the peer libraries print goes to stderr.
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(_load_adapter(sys.argv[1]), replies)


if __name__ == "__main__":
    main()
