"""Running ``swarmedge`` in a subprocess for ``python -m benchmarks.stream`` and watching it: wall
time, when the first result appears, and peak resident memory (its own and its process tree's).
"""

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

# The CLI's own entry point, with the process's peak resident memory (VmHWM) printed on the way out.
HWM_WRAPPER = (
    "import re, sys\n"
    "from swarmedge.cli import main\n"
    "try:\n"
    "    main()\n"
    "finally:\n"
    "    hwm = re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read()).group(1)\n"
    "    print('VmHWM_KB', hwm, file=sys.stderr)\n"
)

def cli() -> list[str]:
    """The installed `swarmedge` command beside this interpreter, else ``python -m swarmedge.cli``."""
    script = Path(sys.executable).parent / "swarmedge"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "swarmedge.cli"]


def pinned(cpus):
    return None if cpus is None else (lambda: os.sched_setaffinity(0, cpus))


def count_lines(path: Path) -> int:
    n = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            n += block.count(b"\n")
    return n


def tree_rss_kb(pid: int) -> tuple[int, int]:
    """(resident KB summed over ``pid`` and its descendants, how many processes)."""
    total, todo, count = 0, [pid], 0
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            match = re.search(r"VmRSS:\s*(\d+)", status)
            total += int(match.group(1)) if match else 0
            count += 1
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total, count


def timed_run(cmd: list[str], output: Path, texts: int, *, cpus=None, stdin=None, sample_rss: bool = False,
              watch_folder: bool = False, timeout: float | None = None) -> dict:
    """Run ``cmd`` (which writes ``texts`` records to ``output``); wall time from spawn to exit,
    the first record's arrival (the file's first bytes, polled; with ``watch_folder`` the first
    bytes of any file in its folder, for a command that writes a temporary file and renames it),
    and, with ``sample_rss``, the peak resident memory of the process tree sampled every 0.1 s and
    the VmHWM it prints at exit. With ``timeout``, a run still going after it is stopped and
    recorded as failed (as is one that fails); without, a failed run ends the benchmark."""
    output.unlink(missing_ok=True)
    log = output.parent / f".{output.name}.log"
    with open(log, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.DEVNULL, stderr=err, preexec_fn=pinned(cpus))
        first = first_records = None
        peak_kb = processes = 0
        while True:
            pid, status = os.waitpid(proc.pid, os.WNOHANG)
            now = time.perf_counter()
            if pid:
                break
            if timeout is not None and now - t0 > timeout:
                proc.terminate()  # the driver's exit lets Ray take down a local cluster it started
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                print(f"  stopped after {timeout:.0f} s without finishing: {' '.join(cmd[-8:])}")
                return {"texts": texts, "failed": f"no result after {timeout:.0f} s (stopped)",
                        "stderr": log.read_text(errors="replace")[-2000:]}
            if first is None:
                written = [e for e in os.scandir(output.parent) if e.is_file() and not e.name.endswith(".log")
                           and e.stat().st_size > 0] if watch_folder else [output] if (
                    output.exists() and output.stat().st_size > 0) else []
                if written:
                    first, first_records = now - t0, count_lines(written[0])
            if sample_rss:
                kb, n = tree_rss_kb(proc.pid)
                peak_kb, processes = max(peak_kb, kb), max(processes, n)
            time.sleep(0.005 if first is None else 0.1 if sample_rss else 0.02)
        wall = now - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = log.read_text(errors="replace")
    log.unlink()
    if proc.returncode != 0 and timeout is not None:
        output.unlink(missing_ok=True)
        print(f"  failed (exit {proc.returncode}): {(stderr.strip().splitlines() or [''])[-1]}")
        return {"texts": texts, "failed": f"exit {proc.returncode}", "stderr": stderr[-2000:]}
    if proc.returncode != 0:
        raise SystemExit(f"error: {' '.join(map(str, cmd))} exited with {proc.returncode}:\n{stderr[-2000:]}")
    written = count_lines(output)
    output.unlink()
    if written != texts:
        raise SystemExit(f"error: {' '.join(map(str, cmd))} wrote {written} results for {texts} texts")
    row = {"texts": texts, "wall_s": wall, "texts_per_s": texts / wall, "first_record_s": first,
           "records_at_first": first_records}
    if first is not None and wall > first and texts > (first_records or 0) and not watch_folder:
        row["texts_per_s_after_first"] = (texts - first_records) / (wall - first)
    if sample_rss:
        hwm = re.findall(r"VmHWM_KB (\d+)", stderr)
        # not ru_maxrss: a forked child's counts this (large) process's pages from before its exec
        row.update({"vmhwm_mb": int(hwm[-1]) / 1024 if hwm else None, "tree_sampled_peak_mb": peak_kb / 1024,
                    "processes": processes})
        row["peak_rss_mb"] = max(v for v in (row["vmhwm_mb"], row["tree_sampled_peak_mb"]) if v)
    return row


def first_result(cmd: list[str], text: str | None, timeout: float = 120) -> float:
    """Seconds from spawning ``cmd`` to the first JSON line on its stdout; ``text`` is written
    into its stdin at once (the pipe stays open until the answer), or None: a --file run, which
    is stopped once its first record is out."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if text is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        if text is not None:
            proc.stdin.write((text + "\n").encode())
            proc.stdin.flush()
        line = proc.stdout.readline()
        elapsed = time.perf_counter() - t0
        if text is None:
            proc.terminate()
        _, err = proc.communicate()  # closes stdin: the stdin run then ends by itself
    finally:
        timer.cancel()
    try:
        record = json.loads(line)
    except ValueError:
        raise SystemExit(f"error: {' '.join(cmd)} gave no result line ({line[:200]!r}):\n"
                         f"{err.decode(errors='replace')[-2000:]}") from None
    if record.get("position") != 0:
        raise SystemExit(f"error: the first result of {' '.join(cmd)} is not position 0: {line[:200]!r}")
    return elapsed
