"""The registry's other entries: MNIST and KMNIST (IDX) and CIFAR-10 (binary records), in small
files of their real formats, downloaded from a local mirror, verified, and trained on."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
import torch
from data_helpers import (
    cifar_tar_gz,
    idx_files,
    register_cifar,
    register_idx,
    tinted,
)

from cnnlab.cli import main
from cnnlab.config import ConfigError
from cnnlab.data import (
    DATASET_NAMES,
    REGISTRY,
    DataError,
    dataset_spec,
    load_dataset,
    verify_all,
)

SEARCH = Path(__file__).resolve().parents[2] / "configs" / "study-search.toml"
TRAIN, TEST = 1000, 200  # images per synthetic dataset: small, still learnable


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_the_registry():
    assert DATASET_NAMES == ("fashion-mnist", "mnist", "kmnist", "cifar-10", "folder")
    shapes = {name: spec.input_shape for name, spec in REGISTRY.items()}
    assert shapes == {
        "fashion-mnist": (1, 28, 28),
        "mnist": (1, 28, 28),
        "kmnist": (1, 28, 28),
        "cifar-10": (3, 32, 32),
    }
    for spec in REGISTRY.values():
        assert spec.num_classes == 10 and len(set(spec.class_names)) == 10
        assert all(len(f.sha256) == 64 for f in spec.files.values())
        assert spec.mirror.startswith("http")
    assert [s.train_images for s in REGISTRY.values()] == [60_000, 60_000, 60_000, 50_000]
    assert REGISTRY["cifar-10"].class_names[:2] == ("airplane", "automobile")
    with pytest.raises(ConfigError, match=r"expected a built-in dataset \(fashion-mnist, mnist"):
        dataset_spec("svhn")


@pytest.fixture(scope="module")
def small(fmnist):
    """Fashion-MNIST's first images: real pictures, so a few epochs learn something."""
    return (
        fmnist.train_images[:TRAIN],
        fmnist.train_labels[:TRAIN],
        fmnist.test_images[:TEST],
        fmnist.test_labels[:TEST],
    )


@pytest.mark.parametrize("name", ["mnist", "kmnist"])
def test_idx_dataset_downloads_verifies_and_trains(name, small, mirror, monkeypatch, tmp_path):
    x, y, tx, ty = small
    files = idx_files(x[:, 0], y, tx[:, 0], ty)
    register_idx(monkeypatch, name, files, (TRAIN, TEST))
    for file, data in files.items():
        (mirror.root / file).write_bytes(data)
    monkeypatch.setenv(REGISTRY[name].mirror_env, mirror.url)

    raw = load_dataset(name)
    cache = tmp_path / "cache" / name
    assert raw.source == cache and names(cache) == sorted(files)
    assert raw.train_images.shape == (TRAIN, 1, 28, 28) and torch.equal(raw.train_images, x)
    assert torch.equal(raw.test_labels, ty) and raw.class_names == list(REGISTRY[name].class_names)
    assert [r.count for r in verify_all(dataset=name)] == [TRAIN, TRAIN, TEST, TEST]
    assert len(mirror.requests) == 4
    load_dataset(name)
    assert len(mirror.requests) == 4  # the cache answered

    from cnnlab.api import train

    # One thread: two stall where other processes share the cores.
    small = [f'data.dataset="{name}"', "train.epochs=2", "model.filters=16", "train.threads=1"]
    result = train(None, small, track=False)
    assert result.fit.compute is not None and result.metrics["test_accuracy"] > 0.5
    assert result.fit.class_names == list(REGISTRY[name].class_names)


def test_idx_download_that_fails_its_checksum_leaves_nothing(small, mirror, monkeypatch, tmp_path):
    x, y, tx, ty = small
    files = idx_files(x[:, 0], y, tx[:, 0], ty)
    register_idx(monkeypatch, "mnist", files, (TRAIN, TEST))
    files["t10k-labels-idx1-ubyte.gz"] = idx_files(x[:, 0], y, tx[:, 0], (ty + 1) % 10)[
        "t10k-labels-idx1-ubyte.gz"
    ]
    for file, data in files.items():
        (mirror.root / file).write_bytes(data)
    monkeypatch.setenv("CNNLAB_MNIST_MIRROR", mirror.url)
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: SHA-256 of the file: expe"):
        load_dataset("mnist")
    kept = [name for name in sorted(files) if not name.startswith("t10k-labels")]
    assert names(tmp_path / "cache" / "mnist") == kept  # no t10k-labels, no .part


@pytest.fixture(scope="module")
def colour(small):
    x, y, tx, ty = small
    return tinted(x), y, tinted(tx), ty


@pytest.fixture
def cifar(colour, mirror, monkeypatch):
    """The small archive registered as cifar-10 and served by the mirror."""
    raw, spec = cifar_tar_gz(*colour)
    register_cifar(monkeypatch, spec)
    (mirror.root / "cifar-10-binary.tar.gz").write_bytes(raw)
    monkeypatch.setenv("CNNLAB_CIFAR10_MIRROR", mirror.url)
    return raw


def test_cifar_downloads_and_parses_the_records(cifar, colour, tmp_path):
    x, y, tx, ty = colour
    raw = load_dataset("cifar-10")
    assert names(tmp_path / "cache" / "cifar-10") == ["cifar-10-binary.tar.gz"]
    assert raw.train_images.shape == (TRAIN, 3, 32, 32)
    assert raw.test_images.shape == (TEST, 3, 32, 32)
    assert torch.equal(raw.train_images, x) and torch.equal(raw.train_labels, y)
    assert torch.equal(raw.test_images, tx) and torch.equal(raw.test_labels, ty)
    (report,) = verify_all(dataset="cifar-10")
    assert report.count == TRAIN + TEST and report.bytes == len(cifar)


@pytest.mark.slow
def test_cifar_through_summary_train_and_tune_check(cifar, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = ["--set", 'data.dataset="cifar-10"']
    assert main(["summary", *data, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["input_shape"] == [3, 32, 32]
    assert summary["layers"][0]["params"] == 64 * 3 * 9 + 64  # a 3x3 conv over 3 channels
    assert summary["spatial_chain"][0] == 32

    # One thread: two stall where other processes share the cores.
    tiny = ["--set", "train.epochs=2", "--set", "model.filters=16", "--set", "train.threads=1"]
    args = ["train", *data, *tiny, "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["test_accuracy"] > 0.5

    # The study's search space, sampled for 32x32 inputs: fewer refused or tiny-map samples.
    check = ["tune", str(SEARCH), "--check", "--json"]
    assert main(check) == 0
    fashion = json.loads(capsys.readouterr().out)
    assert main([*check, *data]) == 0
    cifar = json.loads(capsys.readouterr().out)
    assert cifar["invalid_share"] <= fashion["invalid_share"]
    assert cifar["small_share"] <= fashion["small_share"]
    assert (cifar["invalid"], cifar["small_maps"]) != (fashion["invalid"], fashion["small_maps"])


def _repack(raw: bytes, change) -> bytes:
    """The archive with its members passed through change(name, data) -> data or None (drop)."""
    import io

    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as src,
        tarfile.open(fileobj=out, mode="w:gz") as dst,
    ):
        for member in src.getmembers():
            data = change(member.name, src.extractfile(member).read())
            if data is not None:
                member.size = len(data)
                dst.addfile(member, io.BytesIO(data))
    return out.getvalue()


BATCH_1 = "cifar-10-batches-bin/data_batch_1.bin"
BAD_ARCHIVES = {
    "truncated": (lambda raw: raw[: len(raw) // 2], "archive: expected a complete tar.gz"),
    "empty": (lambda raw: b"", "gzip: expected a gzip stream, got an empty file"),
    "short-member": (
        lambda raw: _repack(raw, lambda n, d: d[:-1] if n == BATCH_1 else d),
        f"member {BATCH_1}: expected 614,600 bytes, got 614,599 bytes",
    ),
    "missing-member": (
        lambda raw: _repack(raw, lambda n, d: None if n.endswith("test_batch.bin") else d),
        "member cifar-10-batches-bin/test_batch.bin: expected in the archive, got no such",
    ),
    "label-10": (
        lambda raw: _repack(raw, lambda n, d: b"\x0a" + d[1:] if n == BATCH_1 else d),
        f"labels in {BATCH_1}: expected 0..9, got 10",
    ),
    "one-changed-pixel": (
        lambda raw: _repack(
            raw, lambda n, d: d[:9] + bytes([d[9] ^ 1]) + d[10:] if n == BATCH_1 else d
        ),
        "SHA-256 of the file: expected",
    ),
}


@pytest.mark.parametrize("case", list(BAD_ARCHIVES))
def test_bad_cifar_archive_is_refused_and_not_cached(case, cifar, mirror, tmp_path):
    make, message = BAD_ARCHIVES[case]
    (mirror.root / "cifar-10-binary.tar.gz").write_bytes(make(cifar))
    with pytest.raises(DataError) as info:
        load_dataset("cifar-10")
    text = str(info.value)
    assert text.startswith("cifar-10-binary.tar.gz: ") and message in text and "\n" not in text
    assert names(tmp_path / "cache" / "cifar-10") == []


def test_data_list_and_verify_on_the_command_line(cifar, capsys):
    assert main(["data", "--list", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert list(rows) == ["fashion-mnist", "mnist", "kmnist", "cifar-10"]
    assert rows["cifar-10"]["found_in"] is None and rows["cifar-10"]["input_shape"] == [3, 32, 32]
    assert main(["data", "cifar-10", "--verify"]) == 0  # downloads, then verifies
    assert capsys.readouterr().out.startswith("ok  cifar-10-binary.tar.gz")
    assert main(["data", "--list"]) == 0
    out = capsys.readouterr().out
    assert "cifar-10       3x32x32   10 classes" in out and "cache/cifar-10" in out
    assert main(["data", "svhn"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "expected a built-in dataset" in err


@pytest.mark.slow
@pytest.mark.usefixtures("kernel_always")
def test_the_fused_first_block_runs_where_it_fits_three_channels(cifar):
    """3 channels x 3x3 (27 weights per output channel) fit the native kernel; 3 x 7x7 (147) do
    not, and the run says it took PyTorch's ops (no fused block in its compute path)."""
    from cnnlab.api import train

    small = ['data.dataset="cifar-10"', "train.epochs=1", "model.filters=8", "train.threads=1"]
    fits = train(None, small, track=False).fit.compute
    assert fits.describe().endswith("features.0: conv, max-pool, relu as the native kernel")
    wide = train(None, [*small, "model.kernel_size=7"], track=False).fit.compute
    assert wide.fused == () and "fused" not in wide.describe()
