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


def test_verify_removes_a_corrupted_file_and_says_what_to_do(toy):
    contents, _, cache = toy
    data.fetch("toy")
    (cache / "b.txt").write_bytes(b"x")
    with pytest.raises(data.ChecksumError) as err:
        data.verify("toy")
    message = str(err.value)
    assert "b.txt" in message and _sha(contents["b.txt"]) in message and _sha(b"x") in message
    assert "data fetch toy" in message
    assert not (cache / "b.txt").exists()
    data.fetch("toy")
    assert data.verify("toy")["b.txt"] == "ok"


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
