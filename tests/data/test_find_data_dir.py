"""find_data_dir: search order, and an explicit directory that is authoritative."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_helpers import use_system_dir

from cnnlab.data import DataError, find_data_dir, load_fashion_mnist

PARTIAL = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte")


@pytest.fixture
def with_debian(debian_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    use_system_dir(monkeypatch, debian_dir)
    return debian_dir


def test_debian_dir_found_without_arguments(with_debian: Path):
    assert find_data_dir(download=False) == with_debian


@pytest.mark.parametrize("as_str", [False, True])
def test_argument_wins(tmp_path: Path, with_debian: Path, link_files, as_str: bool):
    here = link_files(with_debian, tmp_path / "here")
    assert find_data_dir(str(here) if as_str else here) == here


def test_argument_missing_a_file_names_it_and_does_not_fall_back(
    tmp_path: Path, with_debian: Path, link_files
):
    here = link_files(with_debian, tmp_path / "here", PARTIAL)
    with pytest.raises(DataError) as info:
        find_data_dir(here)
    message = str(info.value)
    assert message.startswith("t10k-labels-idx1-ubyte.gz: data dir: expected the file in")
    assert str(here / "t10k-labels-idx1-ubyte.gz") in message


def test_env_dir_is_authoritative(
    tmp_path: Path, with_debian: Path, link_files, monkeypatch: pytest.MonkeyPatch
):
    here = link_files(with_debian, tmp_path / "env", PARTIAL)
    monkeypatch.setenv("CNNLAB_DATA_DIR", str(here))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: data dir"):
        find_data_dir()


def test_argument_beats_env(
    tmp_path: Path, with_debian: Path, link_files, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("CNNLAB_DATA_DIR", str(tmp_path / "empty"))
    here = link_files(with_debian, tmp_path / "here")
    assert find_data_dir(here) == here


def test_load_from_explicit_dir_missing_a_file(tmp_path: Path, debian_dir: Path, link_files):
    here = link_files(debian_dir, tmp_path / "here", PARTIAL)
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz"):
        load_fashion_mnist(here)


def test_cache_used_when_debian_dir_is_absent(cache: Path, debian_dir: Path, link_files):
    link_files(debian_dir, cache)
    assert find_data_dir(download=False) == cache


def test_xdg_cache_home(
    tmp_path: Path, debian_dir: Path, link_files, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("CNNLAB_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    expected = link_files(debian_dir, tmp_path / "xdg" / "cnnlab" / "fashion-mnist")
    assert find_data_dir(download=False) == expected


def test_home_cache(tmp_path: Path, debian_dir: Path, link_files, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("CNNLAB_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = link_files(debian_dir, tmp_path / "home" / ".cache" / "cnnlab" / "fashion-mnist")
    assert find_data_dir(download=False) == expected


def test_incomplete_cache_does_not_count(cache: Path, debian_dir: Path, link_files):
    link_files(debian_dir, cache, PARTIAL)
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: data dir: .*download is off"):
        find_data_dir(download=False)


def test_nothing_found_without_download(cache: Path):
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: data dir"):
        find_data_dir(download=False)
    assert not cache.exists()
