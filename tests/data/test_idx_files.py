"""verify_file: every check on its own, one line of text naming file, check and path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cnnlab.data import KINDS, DataError, verify_file

SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}


def test_kinds_are_the_four_files_in_checksum_order():
    assert tuple(SHA256) == KINDS


@pytest.mark.parametrize("kind", ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"])
def test_verify_file_parses_the_real_test_files(debian_dir: Path, kind: str):
    tensor, sha = verify_file(debian_dir / f"{kind}.gz", kind)
    assert sha == SHA256[kind]
    if "images" in kind:
        assert tensor.dtype == torch.uint8 and tensor.shape == (10_000, 28, 28)
    else:
        assert tensor.dtype == torch.int64 and tensor.shape == (10_000,)
        assert tensor.bincount().tolist() == [1000] * 10


def test_corrupt_file_names_its_check(tmp_path: Path, corruption, corrupt_gz: bytes):
    path = tmp_path / f"{corruption.kind}.gz"
    path.write_bytes(corrupt_gz)
    with pytest.raises(DataError) as info:
        verify_file(path, corruption.kind)
    message = str(info.value)
    assert corruption.check in message
    assert message.startswith(f"{corruption.kind}.gz: ")
    assert message.endswith(f"({path})")
    assert "\n" not in message


def test_missing_file_is_a_data_error(tmp_path: Path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: read: expected a readable"):
        verify_file(path, "t10k-labels-idx1-ubyte")


def test_labels_file_checked_as_images_fails_on_magic(debian_dir: Path):
    with pytest.raises(DataError, match="IDX magic: expected 2051, got 2049"):
        verify_file(debian_dir / "t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte")


def test_unknown_kind_is_a_value_error(debian_dir: Path):
    with pytest.raises(ValueError, match="unknown file kind 'labels'; expected one of train-"):
        verify_file(debian_dir / "t10k-labels-idx1-ubyte.gz", "labels")
