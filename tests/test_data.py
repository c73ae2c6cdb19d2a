"""The data hub: sources, checksums, atomic writes and recovery."""

import gzip
import hashlib
import http.server
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from course_utils import data


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
    info = data.DatasetInfo("toy", "a test dataset", tuple(
        data.RemoteFile(n, f"http://127.0.0.1:9/toy/{n}", _sha(c)) for n, c in contents.items()))
    monkeypatch.setitem(data.REGISTRY, "toy", info)
    monkeypatch.setenv("COURSE_DATA_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(mirror))
    return contents, mirror, tmp_path / "cache" / "toy"


def test_fetch_copies_from_mirror_and_verifies(toy):
    contents, _, cache = toy
    paths = data.fetch("toy")
    assert {n: p.read_bytes() for n, p in paths.items()} == contents
    assert all(p.parent == cache for p in paths.values())
    assert data.verify("toy") == {"a.txt": "ok", "b.txt": "ok"}
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
    status = data.verify("toy")
    assert set(status) == {"a.txt", "b.txt"}, "a bad first file must not stop the check"
    assert all(s.startswith("BAD") for s in status.values())
    assert _sha(contents["b.txt"]) in status["b.txt"] and _sha(b"x") in status["b.txt"]
    assert "data fetch toy" in status["b.txt"]
    assert not (cache / "a.txt").exists() and not (cache / "b.txt").exists()
    data.fetch("toy")
    assert data.verify("toy") == {"a.txt": "ok", "b.txt": "ok"}


def test_verify_command_reports_every_bad_file_and_exits_1(toy, capsys, monkeypatch):
    from course_utils.tooling.cli import main

    monkeypatch.setattr(data, "REGISTRY", {"toy": data.REGISTRY["toy"]})
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
    real_access = data.os.access
    monkeypatch.setattr(data.os, "access", lambda path, mode: False if str(path).endswith("toy") else real_access(path, mode))
    with pytest.raises(data.DataError, match="not writable.*COURSE_DATA_HOME"):
        data.fetch("toy")


def test_racing_fetches_over_a_corrupted_file_both_succeed(toy, monkeypatch):
    """Another process removed the corrupted file between our check and our unlink."""
    contents, _, cache = toy
    data.fetch("toy")
    (cache / "a.txt").write_bytes(b"garbage")
    real_hash = data.sha256_of

    def hash_then_lose_the_race(path):
        digest = real_hash(path)
        if Path(path) == cache / "a.txt":
            Path(path).unlink()  # the other process's unlink
        return digest

    monkeypatch.setattr(data, "sha256_of", hash_then_lose_the_race)
    with pytest.warns(UserWarning, match="corrupted"):
        path = data.fetch_file(data.REGISTRY["toy"], data.REGISTRY["toy"].files[0])
    monkeypatch.setattr(data, "sha256_of", real_hash)
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


def test_parts_of_dead_processes_are_removed_and_live_ones_kept(toy, tmp_path):
    import subprocess
    import sys

    contents, _, cache = toy
    cache.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_part = cache / f".a.txt.{dead.stdout.strip()}.part"
    dead_part.write_bytes(b"half a download")
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        live_part = cache / f".b.txt.{live.pid}.part"
        live_part.write_bytes(b"being written")
        data.fetch("toy")
        assert not dead_part.exists(), "a kill -9 during a copy must not leave its .part forever"
        assert live_part.exists(), "another live process's download must not be removed"
    finally:
        live.kill()
        live.wait()


def test_colab_caches_under_content(monkeypatch):
    monkeypatch.delenv("COURSE_DATA_HOME", raising=False)
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab-test")
    monkeypatch.setattr(data.Path, "is_file", lambda self: False)  # as for an installed package
    assert data.data_home() == Path("/content/datasets")


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
    info = data.REGISTRY["toy"]
    files = (data.RemoteFile("a.txt", url + "a.txt", info.files[0].sha256), info.files[1])
    monkeypatch.setitem(data.REGISTRY, "toy", data.DatasetInfo("toy", "", files))
    assert data.fetch("toy")["a.txt"].read_bytes() == contents["a.txt"]


def test_a_bad_download_is_not_kept(toy, web_server, monkeypatch):
    contents, mirror, cache = toy
    root, url = web_server
    (root / "a.txt").write_bytes(b"this is not the file")
    (mirror / "toy" / "a.txt").unlink()
    info = data.REGISTRY["toy"]
    files = (data.RemoteFile("a.txt", url + "a.txt", info.files[0].sha256),)
    monkeypatch.setitem(data.REGISTRY, "toy", data.DatasetInfo("toy", "", files))
    with pytest.raises(data.DataError, match="checksum mismatch"):
        data.fetch("toy")
    assert not (cache / "a.txt").exists() and not list(cache.glob("*.part"))


def test_registry_covers_the_course_datasets():
    assert set(data.REGISTRY) == {"fashion_mnist", "tinyshakespeare", "conll2003", "resume_ner"}
    assert len(data.REGISTRY["fashion_mnist"].files) == 4
    assert [f.name for f in data.REGISTRY["conll2003"].files] == ["eng.train", "eng.testa", "eng.testb"]
    for info in data.REGISTRY.values():
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
        entry = {f.name: f for f in data.REGISTRY[folder].files}[name]
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
