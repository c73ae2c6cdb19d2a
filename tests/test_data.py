"""The data hub: sources, checksums, atomic writes and recovery."""

import gzip
import hashlib
import http.server
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from course_utils import data
from course_utils.tooling import datasets


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """A registry with one two-file dataset, an empty cache and one mirror holding good copies."""
    contents = {"a.txt": b"first file\n" * 100, "b.txt": b"second file\n" * 50}
    mirror = tmp_path / "mirror"
    (mirror / "toy").mkdir(parents=True)
    for name, content in contents.items():
        (mirror / "toy" / name).write_bytes(content)
    info = datasets.DatasetInfo("toy", "a test dataset", tuple(
        datasets.RemoteFile(n, f"http://127.0.0.1:9/toy/{n}", _sha(c)) for n, c in contents.items()))
    monkeypatch.setitem(datasets.REGISTRY, "toy", info)
    monkeypatch.setenv("COURSE_DATA_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(mirror))
    return contents, mirror, tmp_path / "cache" / "toy"


def test_fetch_copies_from_mirror_and_verifies(toy):
    contents, _, cache = toy
    paths = data.fetch("toy")
    assert {n: p.read_bytes() for n, p in paths.items()} == contents
    assert all(p.parent == cache for p in paths.values())
    assert datasets.verify("toy") == {"a.txt": "ok", "b.txt": "ok"}
    assert not list(cache.glob("*.part")), "no temporary file may be left behind"


def test_unknown_dataset_lists_known_names():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'.*fashion_mnist"):
        data.fetch("mnist")


def test_corrupted_cache_is_reported_and_refetched(toy):
    contents, _, cache = toy
    data.fetch("toy")
    (cache / "a.txt").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="a.txt is corrupted.*fetching it again"):
        paths = data.fetch("toy")
    assert paths["a.txt"].read_bytes() == contents["a.txt"]


def test_verify_checks_every_file_and_says_what_to_do(toy):
    contents, _, cache = toy
    data.fetch("toy")
    (cache / "a.txt").write_bytes(b"y")
    (cache / "b.txt").write_bytes(b"x")
    status = datasets.verify("toy")
    assert set(status) == {"a.txt", "b.txt"}, "a bad first file must not stop the check"
    assert all(s.startswith("BAD") for s in status.values())
    assert _sha(contents["b.txt"]) in status["b.txt"] and _sha(b"x") in status["b.txt"]
    assert "data fetch toy" in status["b.txt"]
    assert not (cache / "a.txt").exists() and not (cache / "b.txt").exists()
    data.fetch("toy")
    assert datasets.verify("toy") == {"a.txt": "ok", "b.txt": "ok"}


def test_verify_command_reports_every_bad_file_and_exits_1(toy, capsys, monkeypatch):
    from course_utils.tooling.cli import main

    monkeypatch.setattr(datasets, "REGISTRY", {"toy": datasets.REGISTRY["toy"]})
    contents, _, cache = toy
    data.fetch("toy")
    (cache / "a.txt").write_bytes(b"y")
    (cache / "b.txt").write_bytes(b"x")
    assert main(["data", "verify"]) == 1
    out = capsys.readouterr().out
    assert out.count("BAD") == 2 and "a.txt" in out and "b.txt" in out


def test_an_unreadable_mirror_file_is_skipped(toy, tmp_path, monkeypatch):
    """(Simulated: the tests may run as root, for whom no file is unreadable.)"""
    contents, mirror, cache = toy
    good = tmp_path / "good"
    shutil.copytree(mirror, good)
    monkeypatch.setenv("COURSE_DATA_MIRROR", f"{mirror}:{good}")
    real_copy = shutil.copyfile

    def copy(source, target):
        if Path(source).parent.parent == mirror:
            raise PermissionError(13, "Permission denied", str(source))
        return real_copy(source, target)

    monkeypatch.setattr(shutil, "copyfile", copy)
    assert data.fetch("toy")["a.txt"].read_bytes() == contents["a.txt"]


def test_a_cache_that_is_a_file_gives_a_clear_error(toy, tmp_path, monkeypatch):
    (tmp_path / "a_file").write_text("not a folder")
    monkeypatch.setenv("COURSE_DATA_HOME", str(tmp_path / "a_file"))
    with pytest.raises(data.DataError, match="is a file, not a folder.*COURSE_DATA_HOME"):
        data.fetch("toy")
    monkeypatch.setenv("COURSE_DATA_HOME", str(tmp_path / "a_file" / "below"))
    with pytest.raises(data.DataError, match="is a file, not a folder"):
        data.fetch("toy")


def test_a_read_only_cache_gives_a_clear_error(toy, monkeypatch):
    """(Simulated with os.access: root may write anywhere.)"""
    real_access = datasets.os.access
    monkeypatch.setattr(datasets.os, "access", lambda path, mode: False if str(path).endswith("toy") else real_access(path, mode))
    with pytest.raises(data.DataError, match="not writable.*COURSE_DATA_HOME"):
        data.fetch("toy")


def test_racing_fetches_over_a_corrupted_file_both_succeed(toy, monkeypatch):
    """Another process removed the corrupted file between our check and our unlink."""
    contents, _, cache = toy
    data.fetch("toy")
    (cache / "a.txt").write_bytes(b"garbage")
    real_hash = datasets.sha256_of

    def hash_then_lose_the_race(path):
        digest = real_hash(path)
        if Path(path) == cache / "a.txt":
            Path(path).unlink()  # the other process's unlink
        return digest

    monkeypatch.setattr(datasets, "sha256_of", hash_then_lose_the_race)
    with pytest.warns(UserWarning, match="corrupted"):
        path = datasets.fetch_file(datasets.REGISTRY["toy"], datasets.REGISTRY["toy"].files[0])
    monkeypatch.setattr(datasets, "sha256_of", real_hash)
    assert path.read_bytes() == contents["a.txt"]


def test_cached_files_follow_the_umask(toy):
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = data.fetch("toy")["a.txt"]
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644, "other users of a shared cache must be able to read it"


def test_parts_of_dead_writers_are_removed_and_live_ones_kept(toy, monkeypatch):
    """A writer adds bytes at least every stall limit; an older .part is a dead writer's."""
    import os
    import time

    contents, _, cache = toy
    cache.mkdir(parents=True)
    monkeypatch.setenv(datasets.STALL_ENV, "5")
    dead_part, live_part = cache / ".a.txt.x1y2z3.part", cache / ".b.txt.q4r5s6.part"
    dead_part.write_bytes(b"half a download")
    live_part.write_bytes(b"being written")
    an_hour_ago = time.time() - 3600
    os.utime(dead_part, (an_hour_ago, an_hour_ago))
    data.fetch("toy")
    assert not dead_part.exists(), "a kill -9 during a copy must not leave its .part forever"
    assert live_part.exists(), "another live process's download must not be removed"


def test_a_folder_or_an_unreadable_file_in_the_cache_gives_one_clear_error(toy, monkeypatch):
    contents, _, cache = toy
    (cache / "a.txt").mkdir(parents=True)
    with pytest.raises(data.DataError, match="holds a folder where a.txt belongs"):
        data.fetch("toy")
    (cache / "a.txt").rmdir()
    data.fetch("toy")

    def unreadable(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(datasets, "sha256_of", unreadable)
    with pytest.raises(data.DataError, match=r"cannot read the cached file .*a.txt \(Permission denied\)"):
        data.fetch("toy")


def test_a_full_cache_disk_is_named_as_such(toy, monkeypatch):
    import errno

    def full(source, target):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", full)
    with pytest.raises(data.DataError, match="cannot write to the data cache .*No space left on device"):
        data.fetch("toy")


def test_dataset_info_says_a_name_is_expected():
    with pytest.raises(TypeError, match="expected a dataset name"):
        datasets.dataset_info(["conll2003"])


def test_colab_caches_under_content(monkeypatch):
    monkeypatch.delenv("COURSE_DATA_HOME", raising=False)
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab-test")
    monkeypatch.setattr(datasets.Path, "is_file", lambda self: False)  # as for an installed package
    assert datasets.data_home() == Path("/content/datasets")


def test_a_failed_download_names_the_url_and_what_to_try(toy):
    contents, mirror, cache = toy
    (mirror / "toy" / "a.txt").unlink()
    with pytest.raises(data.DataError) as err:
        data.fetch("toy")
    message = str(err.value)
    assert "http://127.0.0.1:9/toy/a.txt" in message and "What to try" in message
    assert str(cache) in message


def test_truncated_mirror_falls_back_to_the_next_source(toy, tmp_path, monkeypatch):
    contents, mirror, cache = toy
    (mirror / "toy" / "a.txt").write_bytes(contents["a.txt"][:100])
    good = tmp_path / "good"
    shutil.copytree(mirror, good)
    (good / "toy" / "a.txt").write_bytes(contents["a.txt"])
    monkeypatch.setenv("COURSE_DATA_MIRROR", f"{mirror}:{good}")
    assert data.fetch("toy")["a.txt"].read_bytes() == contents["a.txt"]


def test_no_source_left_lists_every_source_tried(toy):
    contents, mirror, cache = toy
    (mirror / "toy" / "a.txt").write_bytes(contents["a.txt"][:100])
    with pytest.raises(data.DataError) as err:
        data.fetch("toy")
    message = str(err.value)
    assert "checksum mismatch" in message and "truncated" in message
    assert "http://127.0.0.1:9/toy/a.txt" in message
    assert "COURSE_DATA_MIRROR" in message
    assert not (cache / "a.txt").exists() and not list(cache.glob("*.part"))


@pytest.fixture
def web_server(tmp_path):
    """A web server on localhost serving tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()


def test_download_when_the_mirror_copy_is_truncated(toy, web_server, monkeypatch):
    contents, mirror, cache = toy
    root, url = web_server
    (root / "a.txt").write_bytes(contents["a.txt"])
    (mirror / "toy" / "a.txt").write_bytes(contents["a.txt"][:10])
    info = datasets.REGISTRY["toy"]
    files = (datasets.RemoteFile("a.txt", url + "a.txt", info.files[0].sha256), info.files[1])
    monkeypatch.setitem(datasets.REGISTRY, "toy", datasets.DatasetInfo("toy", "", files))
    assert data.fetch("toy")["a.txt"].read_bytes() == contents["a.txt"]


def test_a_bad_download_is_not_kept(toy, web_server, monkeypatch):
    contents, mirror, cache = toy
    root, url = web_server
    (root / "a.txt").write_bytes(b"this is not the file")
    (mirror / "toy" / "a.txt").unlink()
    info = datasets.REGISTRY["toy"]
    files = (datasets.RemoteFile("a.txt", url + "a.txt", info.files[0].sha256),)
    monkeypatch.setitem(datasets.REGISTRY, "toy", datasets.DatasetInfo("toy", "", files))
    with pytest.raises(data.DataError, match="checksum mismatch"):
        data.fetch("toy")
    assert not (cache / "a.txt").exists() and not list(cache.glob("*.part"))


class Trickle(http.server.BaseHTTPRequestHandler):
    """Announces `size` bytes, sends `sent` of them `pause` seconds apart, then hangs or closes."""

    size, sent, pause, hang = 1000, 3, 0.0, 0.0

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(self.size))
        self.end_headers()
        for _ in range(self.sent):
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(self.pause)
        time.sleep(self.hang)

    def log_message(self, *args):
        pass


@pytest.fixture
def trickle(toy, monkeypatch):
    """A server on 127.0.0.1 behaving as `Trickle` says, and the toy registry pointing at it."""
    handler = type("Handler", (Trickle,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    contents, mirror, cache = toy
    (mirror / "toy" / "a.txt").unlink()
    url = f"http://127.0.0.1:{server.server_port}/a.txt"
    info = datasets.REGISTRY["toy"]
    monkeypatch.setitem(datasets.REGISTRY, "toy",
                        datasets.DatasetInfo("toy", "", (datasets.RemoteFile("a.txt", url, info.files[0].sha256),)))
    yield handler, url, cache
    server.shutdown()
    server.server_close()


def test_a_stalled_download_stops_with_a_clear_error_and_leaves_nothing(trickle, monkeypatch, capsys):
    handler, url, cache = trickle
    handler.hang = 10.0
    monkeypatch.setenv(datasets.STALL_ENV, "0.5")
    start = time.monotonic()
    with pytest.raises(data.DataError) as err:
        data.fetch("toy")
    assert time.monotonic() - start < 5, "the stall limit must stop the download"
    assert "no data for 0.5 s" in str(err.value) and datasets.STALL_ENV in str(err.value)
    assert f"downloading toy/a.txt from {url}" in capsys.readouterr().err, "say which source is tried"
    assert not (cache / "a.txt").exists() and not list(cache.glob(".*.part"))


def test_a_server_that_never_answers_is_named_with_the_stall_limit(trickle, monkeypatch):
    handler, url, cache = trickle
    handler.do_GET = lambda self: time.sleep(10)  # accepts the connection, never sends the headers
    monkeypatch.setenv(datasets.STALL_ENV, "0.5")
    with pytest.raises(data.DataError) as err:
        data.fetch("toy")
    assert "no answer for 0.5 s" in str(err.value) and datasets.STALL_ENV in str(err.value)
    assert not (cache / "a.txt").exists() and not list(cache.glob(".*.part"))


def test_a_dripping_download_stops_at_the_deadline(trickle, monkeypatch):
    handler, url, cache = trickle
    handler.sent, handler.pause = 100, 0.2  # a byte every 0.2 s: never a stall
    monkeypatch.setenv(datasets.STALL_ENV, "2")
    monkeypatch.setenv(datasets.DEADLINE_ENV, "1")
    start = time.monotonic()
    with pytest.raises(data.DataError, match=r"longer than 1 s \(COURSE_DOWNLOAD_DEADLINE_S\)"):
        data.fetch("toy")
    assert time.monotonic() - start < 5
    assert not list(cache.glob(".*.part"))


def test_a_truncated_download_names_expected_and_actual_checksums(trickle):
    handler, url, cache = trickle
    handler.size = handler.sent = 3  # a complete response, but not the registered file
    with pytest.raises(data.DataError) as err:
        data.fetch("toy")
    expected = datasets.REGISTRY["toy"].files[0].sha256
    assert f"expected sha256 {expected}, got {_sha(b'xxx')}" in str(err.value)
    assert not (cache / "a.txt").exists() and not list(cache.glob(".*.part"))


@pytest.mark.parametrize("value", ["0", "-3", "soon", "inf"])
def test_download_limits_must_be_positive_seconds(toy, monkeypatch, value):
    monkeypatch.setenv(datasets.DEADLINE_ENV, value)
    with pytest.raises(data.DataError, match="COURSE_DOWNLOAD_DEADLINE_S must be a positive number of seconds"):
        datasets.deadline()


def test_registry_covers_the_course_datasets():
    assert set(datasets.REGISTRY) == {"fashion_mnist", "tinyshakespeare", "conll2003", "resume_ner"}
    assert len(datasets.REGISTRY["fashion_mnist"].files) == 4
    assert [f.name for f in datasets.REGISTRY["conll2003"].files] == ["eng.train", "eng.testa", "eng.testb"]
    for info in datasets.REGISTRY.values():
        for f in info.files:
            assert f.url.startswith(("http://", "https://")) and len(f.sha256) == 64


def test_registry_checksums_match_the_shared_copies():
    """The sha256 in the registry are those of SHA256SUMS in the offline copies."""
    sums = Path(__file__).resolve().parents[2] / "shared" / "data" / "SHA256SUMS"
    if not sums.is_file():
        pytest.skip("no ../shared/data beside this checkout")
    for line in sums.read_text().splitlines():
        digest, rel = line.split()
        folder, name = rel.split("/")
        entry = {f.name: f for f in datasets.REGISTRY[folder].files}[name]
        assert entry.sha256 == digest


def _idx(array: np.ndarray, magic: int) -> bytes:
    header = np.array([magic, *array.shape], dtype=">i4").tobytes()
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def test_load_fashion_mnist_parses_idx_files(tmp_path, monkeypatch):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28))
    labels = np.array([0, 9, 3, 3, 1])
    files = {"t10k-images-idx3-ubyte.gz": _idx(images, 2051), "t10k-labels-idx1-ubyte.gz": _idx(labels, 2049)}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    monkeypatch.setattr(data, "fetch", lambda name: {n: tmp_path / n for n in files})
    x, y = data.load_fashion_mnist("test")
    assert x.shape == (5, 28, 28) and x.dtype == torch.uint8 and y.dtype == torch.int64
    assert torch.equal(x, torch.from_numpy(images.astype(np.uint8))) and y.tolist() == labels.tolist()
    with pytest.raises(ValueError, match="'train' or 'test'"):
        data.load_fashion_mnist("validation")
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(_idx(images, 2049))
    with pytest.raises(data.DataError, match="magic number 2051"):
        data.load_fashion_mnist("test")


def test_real_fashion_mnist_sizes():
    x, y = data.load_fashion_mnist("test")
    assert x.shape == (10_000, 28, 28) and y.shape == (10_000,)
    assert torch.bincount(y).tolist() == [1000] * 10


def test_a_download_larger_than_any_course_file_is_refused(tmp_path, monkeypatch):
    """Re-probes ND11/ND12: a server that sends without end filled the disk."""
    source = tmp_path / "big.bin"
    source.write_bytes(bytes(5000))
    monkeypatch.setattr(datasets, "MAX_DOWNLOAD_BYTES", 1000)
    with pytest.raises(ValueError, match=r"announces 5,000 bytes, more than the 1,000"):
        datasets.download(source.as_uri(), tmp_path / "out.bin")
