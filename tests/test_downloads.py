"""Verified downloads against a real HTTP server on 127.0.0.1: deadline, size cap, redirects, no leftovers."""

import fcntl
import hashlib
import http.server
import io
import os
import signal
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

import pytest

import swarmedge.datasets.mnist as mnist
import swarmedge.datasets.sources as sources
from swarmedge.datasets.imdb import TARBALL
from swarmedge.datasets.mnist import load_mnist
from swarmedge.datasets.sources import RemoteFile, fetch, remove_stale_parts
from swarmedge.errors import InputError

LABELS = next(f for f in mnist.REMOTE if f.name.endswith("t10k-labels-idx1-ubyte.gz"))  # 4.5 kB: quick to serve


def labels_from(*urls: str) -> RemoteFile:
    """The MNIST test-labels record with other URLs."""
    return RemoteFile(LABELS.name, urls, LABELS.bytes, sha256=LABELS.sha256)


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves files under /f/, and misbehaves on the other routes (see each branch)."""

    stop: threading.Event

    def log_message(self, *args):
        pass

    def _head(self, code: int, length: int | None = None, location: str | None = None) -> None:
        self.send_response(code)
        if length is not None:
            self.send_header("Content-Length", str(length))
        if location is not None:
            self.send_header("Location", location)
        self.end_headers()

    def do_GET(self):
        route, _, rest = self.path.lstrip("/").partition("/")
        try:
            if route == "f":
                self.path = "/" + rest
                return super().do_GET()
            if route in ("loop", "chain", "ping", "pong", "toftp", "tofile", "redir"):
                target = {"loop": "/loop/", "chain": f"/chain/{rest}0", "ping": "/pong/", "pong": "/ping/",
                          "toftp": "ftp://127.0.0.1:9/x", "tofile": "file:///etc/passwd", "redir": f"/f/{rest}"}[route]
                return self._head(302, 0, target)
            data = (Path(self.directory) / rest).read_bytes()
            if route == "cut":  # announces the full length, sends half, hangs up
                self._head(200, len(data))
                self.wfile.write(data[: len(data) // 2])
            elif route == "cutnolen":  # no length, half the body, hangs up
                self._head(200)
                self.wfile.write(data[: len(data) // 2])
            elif route == "biglen":  # announces ten times the file
                self._head(200, 10 * len(data))
                self.wfile.write(data * 10)
            elif route == "long":  # no length, then ten times the file
                self._head(200)
                self.wfile.write(data * 10)
            elif route == "drip":  # the right length, one byte every 0.1 s
                self._head(200, len(data))
                for i in range(len(data)):
                    if self.stop.wait(0.1):
                        return
                    self.wfile.write(data[i:i + 1])
                    self.wfile.flush()
            elif route == "stall":  # the right length, ten bytes, then silence
                self._head(200, len(data))
                self.wfile.write(data[:10])
                self.wfile.flush()
                self.stop.wait(60)
            else:
                self._head(404, 0)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should


@pytest.fixture
def server(tmp_path, data_dir):
    """A real HTTP server on 127.0.0.1: the MNIST .gz files, a corrupted and a short copy, and bad routes."""
    root = tmp_path / "www"
    root.mkdir()
    for f in (data_dir / "mnist").iterdir():
        (root / f.name).write_bytes(f.read_bytes())
    bad = bytearray((root / "t10k-labels-idx1-ubyte.gz").read_bytes())
    bad[100] ^= 0xFF
    (root / "corrupt.gz").write_bytes(bytes(bad))
    (root / "short.gz").write_bytes(bytes(bad[: len(bad) // 2]))
    stop = threading.Event()
    handler = type("Handler", (_Handler,), {"stop": stop})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    stop.set()
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def empty_places(tmp_path, monkeypatch):
    monkeypatch.delenv("SWARMEDGE_DATA", raising=False)
    monkeypatch.delenv(sources.DEADLINE_ENV, raising=False)
    monkeypatch.setenv("SWARMEDGE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _remote(urls_for):
    return [RemoteFile(f.name, tuple(urls_for(f.name.split("/")[-1])), f.bytes, sha256=f.sha256)
            for f in mnist.REMOTE]


def test_records_know_the_real_sizes(data_dir):
    # the same files live in shared/data: their sizes and hashes are the records' own
    for f in mnist.REMOTE:
        raw = (data_dir / f.name).read_bytes()
        assert (len(raw), hashlib.sha256(raw).hexdigest()) == (f.bytes, f.sha256)
    assert TARBALL.bytes > 0 and TARBALL.md5


def test_download_verifies_and_caches(server, empty_places, monkeypatch):
    # the first mirror serves a corrupt file, the second one truncates, the third is good
    monkeypatch.setattr(mnist, "REMOTE", _remote(lambda n: [server + "f/corrupt.gz", server + "cut/" + n,
                                                            server + "f/" + n]))
    x, y = load_mnist("test")
    assert x.shape == (10000, 28, 28) and y[0] == 7
    cached = sorted(p.name for p in (empty_places / "mnist").iterdir())
    # only the test split's two files, and no .part files left
    assert cached == sorted(f.name.split("/")[-1] for f in mnist.REMOTE if f.name.startswith("mnist/t10k-"))
    monkeypatch.setattr(mnist, "REMOTE", _remote(lambda n: ["http://127.0.0.1:9/" + n]))
    assert load_mnist("test")[0].shape == (10000, 28, 28)  # now from the cache, no network


def test_a_plain_redirect_is_followed(server, empty_places, data_dir):
    d = fetch([labels_from(server + "redir/t10k-labels-idx1-ubyte.gz")], "MNIST")
    assert (d / LABELS.name).read_bytes() == (data_dir / LABELS.name).read_bytes()


BAD = {  # route: what the one-line refusal must say
    "f/corrupt.gz": "sha256 mismatch",
    "f/short.gz": "announces 2271 bytes, expected 4542",
    "cut/t10k-labels-idx1-ubyte.gz": "cut short: got 2271 of 4542 bytes",
    "cutnolen/t10k-labels-idx1-ubyte.gz": "cut short: got 2271 of 4542 bytes",
    "biglen/t10k-labels-idx1-ubyte.gz": "announces 45420 bytes, expected 4542",
    "long/t10k-labels-idx1-ubyte.gz": "runs past the expected 4542 bytes",
    "drip/t10k-labels-idx1-ubyte.gz": "not complete within the 2 s deadline: got ",
    "stall/t10k-labels-idx1-ubyte.gz": "the server sent nothing for 2 s: got 10 of 4542 bytes",
    "loop/": "infinite loop",
    "ping/": "infinite loop",
    "chain/0": "infinite loop",
    "toftp/": "redirected to ftp://127.0.0.1:9/x, which is not an http(s) URL",
    "tofile/": "not allowed",
}


@pytest.mark.parametrize("route", list(BAD))
def test_bad_downloads_are_refused_in_one_line_and_leave_nothing(server, empty_places, monkeypatch, reliability,
                                                                 route):
    monkeypatch.setenv(sources.DEADLINE_ENV, "2")  # the drip and the stall would otherwise be given 60 s
    reliability["downloads"]["tried"] += 1
    with pytest.raises(InputError) as err:
        fetch([labels_from(server + route)], "MNIST")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("could not download MNIST (" + server + route + ": ")
    assert BAD[route] in msg and "retry later" in msg and "--data" in msg
    assert _files(empty_places) == []
    reliability["downloads"]["refused in one line, nothing left"] += 1


@pytest.mark.parametrize("route", ["biglen", "long"])
def test_size_cap_writes_no_more_than_the_expected_bytes(server, route):
    out = io.BytesIO()
    with pytest.raises(sources._Refused, match="expected 4542"):
        sources._copy_url(f"{server}{route}/t10k-labels-idx1-ubyte.gz", out, LABELS.bytes, 60, LABELS.name)
    assert len(out.getvalue()) <= LABELS.bytes
    assert route != "biglen" or out.getvalue() == b""  # refused on the header alone


def test_non_http_urls_are_not_opened(empty_places, tmp_path):
    (tmp_path / "x").write_bytes(b"x")
    with pytest.raises(InputError, match="not an http"):
        fetch([labels_from((tmp_path / "x").as_uri())], "MNIST")


@pytest.mark.parametrize("value", ["soon", "0", "-5", "nan", "inf"])
def test_a_bad_deadline_setting_is_refused(empty_places, monkeypatch, value):
    monkeypatch.setenv(sources.DEADLINE_ENV, value)
    with pytest.raises(InputError, match=sources.DEADLINE_ENV):
        fetch([labels_from("http://127.0.0.1:9/x")], "MNIST")


def test_default_deadline_is_finite_and_allows_a_slow_link():
    for f in [*mnist.REMOTE, TARBALL]:
        seconds = sources.deadline_for(f)
        assert sources.MIN_DEADLINE_S <= seconds < float("inf")
        assert f.bytes / seconds <= sources.FLOOR_BYTES_PER_S  # a link at the floor speed still finishes


def test_ctrl_c_mid_download_leaves_nothing(empty_places, monkeypatch, reliability):
    def interrupted(url, out, *args):
        out.write(b"partial")
        out.flush()
        assert _files(empty_places), "the .part file should exist while downloading"
        raise KeyboardInterrupt

    monkeypatch.setattr(sources, "_copy_url", interrupted)
    reliability["downloads"]["tried"] += 1
    with pytest.raises(KeyboardInterrupt):
        fetch([labels_from("http://127.0.0.1:9/x")], "MNIST")
    assert _files(empty_places) == []
    reliability["downloads"]["Ctrl-C mid-download: nothing left"] += 1


_CHILD = """
import sys
from pathlib import Path
from swarmedge.datasets.sources import RemoteFile, download_file
name, url, size, sha, dest = sys.argv[1:]
download_file(RemoteFile(name, (url,), int(size), sha256=sha), Path(dest), "MNIST", deadline=600)
"""


def _start_child(url: str, dest: Path) -> subprocess.Popen:
    """A download of the test labels from ``url`` to ``dest`` in another process; returns once its .part has data."""
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, LABELS.name, url, str(LABELS.bytes), LABELS.sha256,
                             str(dest)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(1200):  # a guard against a hang, not a timing check
        parts = list(dest.parent.glob(f".{dest.name}.*.part")) if dest.parent.exists() else []
        if parts and parts[0].stat().st_size > 0:
            return proc
        if proc.poll() is not None:
            pytest.fail(f"the download ended before it was interrupted: {proc.communicate()}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("no .part file appeared")


def test_killed_download_is_swept_on_next_start_but_a_live_one_is_not(server, empty_places, data_dir, reliability):
    dest = empty_places / LABELS.name
    proc = _start_child(server + "drip/t10k-labels-idx1-ubyte.gz", dest)
    try:
        assert remove_stale_parts(dest) == 0  # a live download's .part is left alone
        assert len(list(dest.parent.glob("*.part"))) == 1
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    reliability["downloads"]["tried"] += 1
    assert proc.returncode == -signal.SIGKILL and len(list(dest.parent.glob("*.part"))) == 1  # what a kill leaves
    d = fetch([labels_from(server + "f/t10k-labels-idx1-ubyte.gz")], "MNIST")  # the next start
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]
    assert (d / LABELS.name).read_bytes() == (data_dir / LABELS.name).read_bytes()
    reliability["downloads"]["SIGKILL mid-download: .part swept on next start, then downloaded"] += 1


def test_sigterm_mid_download_leaves_nothing(server, empty_places, reliability):
    dest = empty_places / LABELS.name
    proc = _start_child(server + "drip/t10k-labels-idx1-ubyte.gz", dest)
    proc.send_signal(signal.SIGTERM)
    proc.communicate()
    reliability["downloads"]["tried"] += 1
    assert proc.returncode == 128 + signal.SIGTERM
    assert _files(empty_places) == []
    reliability["downloads"]["SIGTERM mid-download: nothing left"] += 1


def test_sweep_spares_locked_parts_and_other_files(tmp_path):
    dest = tmp_path / "x.gz"
    dead, live = tmp_path / ".x.gz.a1.part", tmp_path / ".x.gz.b2.part"
    other = tmp_path / ".y.gz.c3.part"  # another file's download: not this sweep's business
    for p in (dead, live, other):
        p.write_bytes(b"partial")
    fd = os.open(live, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert remove_stale_parts(dest) == 1
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name])
    finally:
        os.close(fd)
    assert remove_stale_parts(dest) == 1 and not live.exists() and other.exists()


def test_offline_and_missing_says_where_it_looked(empty_places, monkeypatch, tmp_path):
    monkeypatch.setattr(mnist, "REMOTE", _remote(lambda n: ["http://127.0.0.1:9/" + n]))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError) as err:
        load_mnist("test", data=tmp_path / "empty")
    assert "empty" in str(err.value) and "SWARMEDGE_DATA" in str(err.value) and str(empty_places) in str(err.value)
    with pytest.raises(InputError, match="nowhere does not exist: check the path given with --data/--data-dir"):
        load_mnist("test", data=tmp_path / "nowhere")  # a typo: said at once, never a download
