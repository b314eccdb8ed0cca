"""Downloads from a local mirror: verified before they land, nothing half-written left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnlab.data import KINDS, DataError, find_data_dir, load_fashion_mnist

OTHERS = {kind: tuple(k for k in KINDS if k != kind) for kind in KINDS}


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_download_fills_the_cache(cache: Path, mirror, debian_dir: Path):
    mirror.copy_from(debian_dir)
    raw = load_fashion_mnist()
    assert raw.source == cache
    assert names(cache) == sorted(f"{kind}.gz" for kind in KINDS)
    assert sorted(mirror.requests) == sorted(f"/{kind}.gz" for kind in KINDS)
    assert raw.train_images.shape == (60_000, 1, 28, 28)

    assert find_data_dir() == cache
    assert len(mirror.requests) == 4  # the second call found the cache


def test_only_missing_files_are_fetched(cache: Path, mirror, debian_dir: Path, link_files):
    link_files(debian_dir, cache, KINDS[:3])
    mirror.copy_from(debian_dir, KINDS[3:])
    assert find_data_dir() == cache
    assert mirror.requests == [f"/{KINDS[3]}.gz"]


def test_corrupt_download_leaves_nothing(
    cache: Path, mirror, debian_dir: Path, link_files, corruption, corrupt_gz: bytes
):
    link_files(debian_dir, cache, OTHERS[corruption.kind])
    mirror.put(corruption.kind, corrupt_gz)
    with pytest.raises(DataError) as info:
        find_data_dir()
    message = str(info.value)
    assert corruption.check in message
    assert message.startswith(f"{corruption.kind}.gz: ")
    assert message.endswith(f"({mirror.url}{corruption.kind}.gz)")
    assert names(cache) == sorted(f"{kind}.gz" for kind in OTHERS[corruption.kind])


def test_http_404(cache: Path, mirror):
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: download: .*got HTTP 404"):
        find_data_dir()
    assert names(cache) == []
    assert mirror.requests == ["/train-images-idx3-ubyte.gz"]


def test_download_off_never_asks_the_mirror(mirror, debian_dir: Path):
    mirror.copy_from(debian_dir)
    with pytest.raises(DataError, match="download is off"):
        find_data_dir(download=False)
    assert mirror.requests == []


def test_connection_refused(cache: Path, closed_port: int, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CNNLAB_DATA_MIRROR", f"http://127.0.0.1:{closed_port}")
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: download: expected a resp"):
        find_data_dir()
    assert names(cache) == []


def test_timeout(cache: Path, silent_port: int, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("cnnlab.data._download.TIMEOUT_S", 0.2)
    monkeypatch.setenv("CNNLAB_DATA_MIRROR", f"http://127.0.0.1:{silent_port}/")
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: download: .*timed out"):
        find_data_dir()
    assert names(cache) == []


def test_bad_mirror_url(cache: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CNNLAB_DATA_MIRROR", "nonsense://mirror")
    with pytest.raises(DataError, match="download"):
        find_data_dir()
    assert names(cache) == []
