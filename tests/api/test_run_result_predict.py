"""RunResult.predict normalises with the statistics the run logged and lays the model out once:
a loaded run predicts as it was trained even when its folder dataset is gone."""

from __future__ import annotations

import shutil

import pytest
import torch

import cnnlab
from cnnlab.training import Runtime

N = 300  # images in the folder


def _write_folder(root, images, labels) -> None:
    from PIL import Image

    for index, (image, label) in enumerate(zip(images, labels.tolist())):
        (root / f"{label}-c").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[0].numpy()).save(root / f"{label}-c" / f"{index:05d}.png")


def _folder_run(tmp_path, fmnist, uri):
    folder = tmp_path / "pictures"
    _write_folder(folder, fmnist.train_images[:N], fmnist.train_labels[:N])
    config = {
        "data": {"dataset": "folder", "path": str(folder), "val_fraction": 0.1},
        "model": {"filters": 4, "hidden_units": [16]},
        "train": {"epochs": 1, "eval_batch_size": 500},
    }
    return folder, cnnlab.train(config, tracking_uri=uri, progress=False)


@pytest.mark.slow
def test_a_loaded_run_predicts_without_its_folder(tmp_path, fmnist, uri):
    folder, trained = _folder_run(tmp_path, fmnist, uri)
    images = fmnist.test_images[:50, 0]
    expected = trained.predict(images)
    shutil.rmtree(folder)
    loaded = cnnlab.load_run(trained.run_id, tracking_uri=uri)
    assert torch.equal(loaded.predict(images), expected)
    assert loaded.pixel_stats == trained.pixel_stats


@pytest.mark.slow
def test_predict_lays_the_model_out_once(tmp_path, fmnist, uri, monkeypatch):
    _, trained = _folder_run(tmp_path, fmnist, uri)
    loaded = cnnlab.load_run(trained.run_id, tracking_uri=uri)
    prepared = []
    original = Runtime.prepare

    def counted(self, model, *args):
        prepared.append(model)
        return original(self, model, *args)

    monkeypatch.setattr(Runtime, "prepare", counted)
    images = fmnist.test_images[:20, 0]
    first, second = loaded.predict(images), loaded.predict(images)
    assert torch.equal(first, second) and len(prepared) == 1
