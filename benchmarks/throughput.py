"""cnnlab's trainer against the course's way of training, on the study's final model.

    python benchmarks/throughput.py --rounds 3

The study's model (64 filters, two conv blocks, the 6x6 map flattened into a 128-64 head), Adam
lr 1e-3, weight decay 1e-5, batch 64, 128,000 training images (2,000 steps), trained alternately
by a reference loop (DataLoader over a TensorDataset of fp32 images, fp32, loss.item() every
step) and by cnnlab.fit with its defaults. Prints one JSON line: median images/s of each, their
ratio and both test accuracies.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from _common import emit, median, note
from torch.utils.data import DataLoader, TensorDataset

from cnnlab.config import load_config
from cnnlab.data import load_fashion_mnist, make_splits
from cnnlab.models import create_model
from cnnlab.training import Normalize, evaluate, fit, seed_everything

STUDY = ["train.batch_size=64", "train.optimizer=adam", "train.lr=1e-3", "train.weight_decay=1e-5"]


def course_order(model: torch.nn.Module) -> torch.nn.Module:
    """The course's layer order, conv -> ReLU -> max-pool, in place.

    cnnlab pools before a ReLU (the same function, a quarter of the ReLU's work); the reference
    keeps the order the course's model code has, with the same layers and initial weights.
    """
    for i, block in enumerate(model.features):
        pools = [m for m in block if isinstance(m, torch.nn.MaxPool2d)]
        rest = [m for m in block if not isinstance(m, torch.nn.MaxPool2d)]
        model.features[i] = torch.nn.Sequential(*rest, *pools)
    return model


def reference(cfg, splits, steps: int) -> tuple[float, float]:
    """The course's loop; returns (training images/s, test accuracy)."""
    seed_everything(cfg.train.seed)
    model = course_order(create_model(cfg.model))
    norm = Normalize(splits.mean, splits.std)
    loader = DataLoader(
        TensorDataset(norm(splits.train_x), splits.train_y), batch_size=64, shuffle=True
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5)
    model.train()
    done, started = 0, time.perf_counter()
    while done < steps:
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()  # the progress bar's per-step read-back
            done += 1
            if done == steps:
                break
    rate = steps * 64 / (time.perf_counter() - started)
    x, y = splits.test_x, splits.test_y
    return rate, evaluate(model, x, y, norm, 1000)[1]


def cnnlab_run(cfg, splits) -> tuple[float, float]:
    seed_everything(cfg.train.seed)
    result = fit(create_model(cfg.model), splits, cfg.train)
    seconds = sum(m.seconds for m in result.history)  # training epochs; the test pass excluded
    return result.images_seen / seconds, result.test_accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating pairs of runs")
    parser.add_argument("--images", type=int, default=128_000, help="training images per run")
    parser.add_argument("--set", nargs="*", default=[], help="extra cnnlab overrides")
    args = parser.parse_args()
    steps = args.images // 64
    # Epochs of 100 steps as the course ran them; no validation split, as in the reference.
    overrides = [*STUDY, "data.val_fraction=0.0", "train.steps_per_epoch=100"]
    cfg = load_config(None, [*overrides, f"train.epochs={steps // 100}", *args.set])
    splits = make_splits(load_fashion_mnist(), 0.0, 0, cfg.train.seed)
    runs: dict[str, list[tuple[float, float]]] = {"reference": [], "cnnlab": []}
    for r in range(args.rounds):
        order = ["reference", "cnnlab"] if r % 2 == 0 else ["cnnlab", "reference"]
        for name in order:
            out = reference(cfg, splits, steps) if name == "reference" else cnnlab_run(cfg, splits)
            runs[name].append(out)
            note(f"round {r + 1} {name}: {out[0]:.0f} img/s, test acc {out[1]:.4f}")
    ref = median([x for x, _ in runs["reference"]])
    fast = median([x for x, _ in runs["cnnlab"]])
    emit(
        {
            "benchmark": "throughput",
            "images_per_run": steps * 64,
            "rounds": args.rounds,
            "reference_img_s": round(ref),
            "cnnlab_img_s": round(fast),
            "ratio": round(fast / ref, 2),
            "reference_test_acc": median([a for _, a in runs["reference"]]),
            "cnnlab_test_acc": median([a for _, a in runs["cnnlab"]]),
            "cnnlab_config": {k.split("=")[0]: k.split("=")[1] for k in args.set},
            "all_runs": runs,
        }
    )


if __name__ == "__main__":
    main()
