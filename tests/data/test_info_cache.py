"""InfoCache: a dataset's info once per distinct source, and a distinct info per split."""

from __future__ import annotations

import dataclasses

import torch
from data_helpers import write_folder

from cnnlab.config import DataConfig
from cnnlab.data import InfoCache, dataset_info


def test_a_folder_split_another_way_is_not_served_the_first_split(tmp_path):
    images = torch.randint(0, 256, (40, 1, 8, 8), dtype=torch.uint8)
    write_folder(tmp_path / "flat", images, torch.arange(40) % 4)
    infos = InfoCache()
    fifth = DataConfig(dataset="folder", path=str(tmp_path / "flat"), test_fraction=0.2)
    half = dataclasses.replace(fifth, test_fraction=0.5)
    reseeded = dataclasses.replace(fifth, split_seed=7)
    assert infos(fifth).train_images == 32
    assert infos(half).train_images == 20 == dataset_info(half).train_images
    assert infos(reseeded) == dataset_info(reseeded)
    assert infos(fifth).train_images == 32  # the first split is still known as itself
