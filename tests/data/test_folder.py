"""A folder of images as a dataset: layout, decoding, the content-keyed cache, the held-out test
set, and bad data refused before any run (exit 3, one line, nothing written)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from data_helpers import tinted, write_folder

from cnnlab.cli import main
from cnnlab.data import DataError, load_folder

N_TRAIN, N_TEST = 300, 100


@pytest.fixture(scope="module")
def pictures(fmnist):
    return (
        fmnist.train_images[:N_TRAIN],
        fmnist.train_labels[:N_TRAIN],
        fmnist.test_images[:N_TEST],
        fmnist.test_labels[:N_TEST],
    )


@pytest.fixture
def halves(tmp_path: Path, pictures) -> Path:
    """tmp/images/train/<class>/*.png and tmp/images/test/<class>/*.png."""
    x, y, tx, ty = pictures
    root = tmp_path / "images"
    write_folder(root / "train", x, y)
    write_folder(root / "test", tx, ty)
    return root


def cached_files(tmp_path: Path) -> list[str]:
    folder = tmp_path / "cache" / "folders"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_train_and_test_halves_load_as_written(halves: Path, pictures, tmp_path: Path):
    x, y, tx, ty = pictures
    raw = load_folder(halves, None, 0.2, 42)
    # Numbered file names: read in name order across the classes, the order they were written.
    assert raw.train_images.shape == (N_TRAIN, 1, 28, 28) and raw.train_images.dtype == torch.uint8
    assert torch.equal(raw.train_images, x) and torch.equal(raw.train_labels, y)
    assert torch.equal(raw.test_images, tx) and torch.equal(raw.test_labels, ty)
    assert raw.class_names == [f"{i}-c" for i in range(10)] and raw.note == ""
    assert raw.source == halves and len(raw.checksum) == 64
    assert len(cached_files(tmp_path)) == 1 and cached_files(tmp_path)[0].endswith(".npz")


def test_second_load_reads_the_cache_and_a_change_decodes_again(
    halves: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    first = load_folder(halves, None, 0.2, 42)
    decoded = []
    real = __import__("cnnlab.data._folder", fromlist=["_decode"])._decode
    monkeypatch.setattr("cnnlab.data._folder._decode", lambda *a: decoded.append(a) or real(*a))
    again = load_folder(halves, None, 0.2, 42)
    assert decoded == [] and torch.equal(again.train_images, first.train_images)
    assert again.checksum == first.checksum

    touched = next((halves / "train" / "3-c").iterdir())
    os.utime(touched, ns=(1, 1))
    load_folder(halves, None, 0.2, 42)
    assert len(decoded) == N_TRAIN + N_TEST and len(cached_files(tmp_path)) == 2


def test_without_a_test_half_a_seeded_share_is_held_out(tmp_path: Path, pictures):
    x, y, _, _ = pictures
    write_folder(tmp_path / "flat", x, y)
    raw = load_folder(tmp_path / "flat", None, 0.2, 7)
    assert len(raw.test_images) == 60 and len(raw.train_images) == 240
    assert "60 of its 300 images (20%, data.split_seed 7) held out as the test set" in raw.note
    again = load_folder(tmp_path / "flat", None, 0.2, 7)
    assert torch.equal(again.test_labels, raw.test_labels)
    other = load_folder(tmp_path / "flat", None, 0.2, 8)
    assert not torch.equal(other.test_images, raw.test_images)
    both = torch.cat([raw.train_labels, raw.test_labels]).sort().values
    assert torch.equal(both, y.sort().values)


def test_image_size_resizes_and_colour_makes_three_channels(tmp_path: Path, pictures):
    x, y, _, _ = pictures
    root = tmp_path / "mixed"
    write_folder(root, x[:40], y[:40])
    write_folder(root, tinted(x[40:80]), y[40:80], fmt="jpg")  # 32x32 RGB JPEGs beside them
    with pytest.raises(DataError, match=r"expected 32x32 like 00000.jpg, got 28x28 \(set data"):
        load_folder(root, None, 0.25, 0)
    raw = load_folder(root, (24, 20), 0.25, 0)
    assert raw.train_images.shape[1:] == (3, 24, 20) and len(raw.train_images) == 60
    gray = raw.train_images[raw.train_images[:, 0].eq(raw.train_images[:, 2]).flatten(1).all(1)]
    assert len(gray) > 0  # the grayscale PNGs became RGB with equal channels


BAD = {
    "empty-class": (
        lambda root: _empty(root / "train" / "4-c"),
        "train/4-c: class folder: expected images, got an empty folder",
    ),
    "not-an-image": (
        lambda root: (root / "train" / "2-c" / "notes.txt").write_text("hello"),
        "train/2-c/notes.txt: image: expected a PNG or JPEG file, got another kind",
    ),
    "corrupt-image": (
        lambda root: _truncate(next((root / "test" / "1-c").iterdir())),
        "image: expected a complete image, got",
    ),
    "class-missing-from-test": (
        lambda root: _remove_tree(root / "test" / "9-c"),
        "test/9-c: test half: expected a folder for every training class, got none for class '9-c'",
    ),
    "one-class": (
        lambda root: (
            [_remove_tree(p) for p in sorted((root / "train").iterdir())[1:]]
            and _remove_tree(root / "test")
        ),
        "train: classes: expected at least 2 class folders, got 1 (0-c)",
    ),
    "differing-sizes": (
        lambda root: _resave(next((root / "train" / "5-c").iterdir()), (30, 28)),
        "image size: expected 28x28 like",
    ),
    "no-such-folder": (
        lambda root: _remove_tree(root),
        "data.path: expected a folder of images, got no such folder",
    ),
}


def _empty(folder: Path) -> None:
    for p in folder.iterdir():
        p.unlink()


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:60])


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path)


def _resave(path: Path, size: tuple[int, int]) -> None:
    from PIL import Image

    with Image.open(path) as image:
        image.resize(size).save(path)


@pytest.mark.parametrize("case", list(BAD))
def test_bad_folder_exits_3_in_one_line_with_no_run_and_no_cache(
    case, halves: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
):
    spoil, message = BAD[case]
    spoil(halves)
    monkeypatch.chdir(tmp_path)
    args = ["--set", 'data.dataset="folder"', "--set", f'data.path="{halves}"']
    assert main(["train", *args, "--set", "train.epochs=1"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "cnnlab-runs").exists()
    assert cached_files(tmp_path) == []


@pytest.mark.slow
def test_a_run_on_a_folder_records_its_classes_and_note(
    tmp_path: Path, pictures, capsys, caplog, monkeypatch: pytest.MonkeyPatch, empty_store
):
    import json

    from cnnlab.api import load_run
    from cnnlab.tracking import CONFUSION_ARTIFACT, Store

    x, y, _, _ = pictures
    write_folder(tmp_path / "flat", x, y)
    monkeypatch.chdir(tmp_path)
    uri = empty_store(tmp_path / "runs.db")
    args = ["--set", 'data.dataset="folder"', "--set", f'data.path="{tmp_path / "flat"}"']
    assert main(["train", *args, "--set", "train.epochs=2", "--tracking-uri", uri, "--json"]) == 0
    assert "held out as the test set" in caplog.text  # a warning line on stderr
    run_id = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["run_id"]
    run = Store(uri).get_run(run_id)
    assert "60 of its 300 images" in run.data.tags["cnnlab.data_note"]
    assert run.data.params["data.dataset"] == "folder"
    table = json.loads(
        Path(Store(uri).download_artifacts(run_id, CONFUSION_ARTIFACT, str(tmp_path))).read_text()
    )
    assert table["class_names"] == [f"{i}-c" for i in range(10)]
    (tmp_path / "flat").rename(tmp_path / "moved")  # the model loads without the folder
    loaded = load_run(run_id, tracking_uri=uri)
    assert loaded.model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.slow
def test_fashion_mnist_as_png_files_trains_exactly_as_the_idx_files(
    tmp_path: Path, fmnist, debian_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    """All 70,000 images written as PNG with numbered names: the folder holds the same pixels
    in the same order, so the same config and seed pick the same splits and reach the same
    test accuracy as the IDX run."""
    from cnnlab.api import train

    root = tmp_path / "fashion-mnist-png"
    write_folder(root / "train", fmnist.train_images, fmnist.train_labels)
    write_folder(root / "test", fmnist.test_images, fmnist.test_labels)
    raw = load_folder(root, None, 0.2, 42)
    assert torch.equal(raw.train_images, fmnist.train_images)
    assert torch.equal(raw.test_labels, fmnist.test_labels)

    monkeypatch.setenv("CNNLAB_DATA_DIR", str(debian_dir))
    small = [
        "data.train_limit=3000",
        "data.val_fraction=0.02",  # the same split both ways, and 1,200 images to evaluate
        "train.epochs=1",
        "model.filters=16",
        "train.seed=3",
    ]
    idx = train(None, small, track=False).metrics["test_accuracy"]
    folder = ['data.dataset="folder"', f'data.path="{root}"']
    png = train(None, [*small, *folder], track=False).metrics["test_accuracy"]
    assert abs(png - idx) <= 0.005 and png == idx


STUDY_STEP = """
[step]
kind = "train"
description = "Two widths on a folder of images."
variants = [{{ name = "narrow", set = ["model.filters=4"] }}, {{ name = "wide" }}]

[data]
dataset = "folder"
path = "{path}"

[model]
filters = 8
hidden_units = [16]

[train]
epochs = 2
eval_batch_size = 500

[tracking]
log_model = false
"""


@pytest.mark.slow
def test_study_and_report_on_a_step_that_names_a_folder(
    halves: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch, empty_store
):
    study = tmp_path / "mine"
    study.mkdir()
    (study / "1-widths.toml").write_text(STUDY_STEP.format(path=halves))
    uri = empty_store(tmp_path / "runs.db")
    monkeypatch.chdir(tmp_path)
    assert main(["study", str(study), "--out", "out", "--tracking-uri", uri, "--quiet"]) == 0
    report = (tmp_path / "out" / "report.md").read_text()
    assert "1-widths" in report and "9-c" in report  # the folder's class names
    assert (tmp_path / "out" / "best-confusion.svg").is_file()
    capsys.readouterr()
    assert main(["report", "--tracking-uri", uri, "--out", "again"]) == 0
    assert "9-c" in (tmp_path / "again" / "report.md").read_text()
