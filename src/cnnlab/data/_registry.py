"""The built-in datasets: their files, checksums, classes, input shape and where to get them.

    spec = dataset_spec("cifar-10")
    spec.input_shape, spec.class_names, spec.file_names

A config names one by `data.dataset`; `data.dataset = "folder"` reads a folder of images instead
(cnnlab.data._folder). Checksums of the MNIST, KMNIST and CIFAR-10 files are of the files as
their mirrors serve them; Fashion-MNIST's are of the decompressed payloads, because Debian's
package recompresses the files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cnnlab.config import BUILT_IN_DATASETS, ConfigError
from cnnlab.config import DATASET_NAMES as DATASET_NAMES  # what `data.dataset` accepts
from cnnlab.config import FOLDER as FOLDER  # `data.dataset` for a folder of images
from cnnlab.data._cifar import ArchiveSpec
from cnnlab.data._idx import IMAGES_MAGIC, KINDS, LABELS_MAGIC, FileSpec, file_name


@dataclass(frozen=True)
class DatasetSpec:
    """One built-in dataset."""

    name: str  # its `data.dataset` value
    about: str  # one line for `cnnlab data --list`
    format: Literal["idx", "cifar"]
    files: dict[str, FileSpec | ArchiveSpec]  # by file name, in the order the checksum uses
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]  # channels, height, width
    mirror: str  # base URL the files are downloaded from
    dir_env: str  # environment variable naming a directory that holds the files
    mirror_env: str  # environment variable naming another mirror
    system_dirs: tuple[Path, ...] = ()  # where an OS package puts the files

    @property
    def file_names(self) -> tuple[str, ...]:
        return tuple(self.files)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def train_images(self) -> int:
        first = next(iter(self.files.values()))
        return len(first.train) * first.records if self.format == "cifar" else first.count


def _idx_files(counts: tuple[int, int], hashes: tuple[str, ...], hashed: str) -> dict:
    train, test = counts
    specs = (
        (IMAGES_MAGIC, train),
        (LABELS_MAGIC, train),
        (IMAGES_MAGIC, test),
        (LABELS_MAGIC, test),
    )
    return {
        file_name(kind): FileSpec(magic, count, sha, hashed=hashed)
        for kind, (magic, count), sha in zip(KINDS, specs, hashes)
    }


_CIFAR_DIR = "cifar-10-batches-bin/"

REGISTRY: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="fashion-mnist",
            about="Zalando's clothing images, 28x28 grayscale, 60,000 + 10,000",
            format="idx",
            files=_idx_files(
                (60_000, 10_000),
                (
                    "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                    "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                    "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                    "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
                ),
                "payload",
            ),
            class_names=(
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ),
            input_shape=(1, 28, 28),
            mirror="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            dir_env="CNNLAB_DATA_DIR",
            mirror_env="CNNLAB_DATA_MIRROR",
            system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),  # Debian's package
        ),
        DatasetSpec(
            name="mnist",
            about="handwritten digits, 28x28 grayscale, 60,000 + 10,000",
            format="idx",
            files=_idx_files(
                (60_000, 10_000),
                (
                    "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                    "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                    "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                    "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                ),
                "file",
            ),
            class_names=tuple(str(digit) for digit in range(10)),
            input_shape=(1, 28, 28),
            mirror="https://storage.googleapis.com/cvdf-datasets/mnist/",
            dir_env="CNNLAB_MNIST_DIR",
            mirror_env="CNNLAB_MNIST_MIRROR",
        ),
        DatasetSpec(
            name="kmnist",
            about="Kuzushiji-MNIST: cursive Japanese characters, 28x28 grayscale, 60,000 + 10,000",
            format="idx",
            files=_idx_files(
                (60_000, 10_000),
                (
                    "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",
                    "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
                    "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",
                    "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c",
                ),
                "file",
            ),
            # The ten hiragana, romanised so that every plot font can draw them.
            class_names=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
            input_shape=(1, 28, 28),
            mirror="http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
            dir_env="CNNLAB_KMNIST_DIR",
            mirror_env="CNNLAB_KMNIST_MIRROR",
        ),
        DatasetSpec(
            name="cifar-10",
            about="small photos in ten classes, 32x32 RGB, 50,000 + 10,000",
            format="cifar",
            files={
                "cifar-10-binary.tar.gz": ArchiveSpec(
                    "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
                    train=tuple(f"{_CIFAR_DIR}data_batch_{i}.bin" for i in range(1, 6)),
                    test=(f"{_CIFAR_DIR}test_batch.bin",),
                )
            },
            class_names=(
                "airplane",
                "automobile",
                "bird",
                "cat",
                "deer",
                "dog",
                "frog",
                "horse",
                "ship",
                "truck",
            ),
            input_shape=(3, 32, 32),
            mirror="https://www.cs.toronto.edu/~kriz/",
            dir_env="CNNLAB_CIFAR10_DIR",
            mirror_env="CNNLAB_CIFAR10_MIRROR",
        ),
    )
}

# cnnlab.config checks `data.dataset` against its own list of names (it imports nothing of
# cnnlab's), so a dataset added here and not there, or the other way round, fails here at once.
if tuple(REGISTRY) != BUILT_IN_DATASETS:
    _only_here = [name for name in REGISTRY if name not in BUILT_IN_DATASETS]
    _only_there = [name for name in BUILT_IN_DATASETS if name not in REGISTRY]
    raise RuntimeError(
        "cnnlab.data.REGISTRY and cnnlab.config.BUILT_IN_DATASETS differ: "
        f"only in REGISTRY {_only_here}, only in BUILT_IN_DATASETS {_only_there}; "
        f"REGISTRY order {list(REGISTRY)}, BUILT_IN_DATASETS order {list(BUILT_IN_DATASETS)}"
    )


def dataset_spec(name: str) -> DatasetSpec:
    """The registry entry; ConfigError (bad input) naming the choices when there is none."""
    if name not in REGISTRY:
        choices = ", ".join(REGISTRY)
        raise ConfigError(f"data.dataset: expected a built-in dataset ({choices}), got {name!r}")
    return REGISTRY[name]
