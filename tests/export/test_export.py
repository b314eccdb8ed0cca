"""Models out of cnnlab: the MLflow model each run logs (loaded where cnnlab cannot be imported),
ONNX and torch.export files equal to PyTorch on the test set, the Model Registry, predict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from env_helpers import require
from mlflow import MlflowClient
from PIL import Image

from cnnlab.api import train, tune
from cnnlab.cli import main
from cnnlab.export import TOLERANCE, export_model, run_model

# 600 validation images, not 6,000: the validation split is not what these tests look at. One
# thread: two stall where other processes share the cores.
SMALL = [
    "train.epochs=2",
    "train.threads=1",
    "data.train_limit=2000",
    "data.val_fraction=0.01",
    "model.filters=8",
    "model.hidden_units=[32]",
]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('export')}/mlflow.db"


@pytest.fixture(scope="module")
def run_id(store: str, fmnist) -> str:
    return train(None, SMALL, tracking_uri=store, progress=False).run_id


@pytest.fixture(scope="module")
def test_images(fmnist) -> np.ndarray:
    return fmnist.test_images.float().numpy()


@pytest.mark.slow
def test_the_mlflow_model_loads_and_predicts_without_cnnlab(run_id, store, tmp_path, test_images):
    np.save(tmp_path / "x.npy", test_images[:500])
    script = f"""
import sys, importlib.abc
class NoCnnlab(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "cnnlab":
            raise ImportError("cnnlab is not installed here")
sys.meta_path.insert(0, NoCnnlab())
import mlflow, numpy as np
mlflow.set_tracking_uri({store!r})
model = mlflow.pyfunc.load_model("runs:/{run_id}/mlflow_model")
np.save({str(tmp_path / "p.npy")!r}, model.predict(np.load({str(tmp_path / "x.npy")!r})))
assert "cnnlab" not in sys.modules
"""
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=180
    )
    assert done.returncode == 0, done.stderr[-2000:]
    probabilities = np.load(tmp_path / "p.npy")
    assert probabilities.shape == (500, 10)
    assert np.allclose(probabilities.sum(1), 1, atol=1e-5)
    model = run_model(run_id, tracking_uri=store)
    with torch.no_grad():
        expected = model.net(torch.from_numpy(test_images[:500])).numpy()
    assert np.abs(probabilities - expected).max() < 1e-5
    assert model.class_names[0] == "T-shirt/top" and model.input_shape == (1, 28, 28)


@pytest.mark.slow
def test_the_network_matches_the_run_test_accuracy(run_id, store, test_images, fmnist):
    """The standalone network (fp32) classifies the test set as the run measured it (bf16 where
    the CPU has it: a few images near a tie may flip)."""
    model = run_model(run_id, tracking_uri=store)
    with torch.no_grad():
        predicted = model.net(torch.from_numpy(test_images)).argmax(1)
    accuracy = float((predicted == fmnist.test_labels).double().mean())
    logged = MlflowClient(store).get_run(run_id).data.metrics["test_accuracy"]
    assert abs(accuracy - logged) < 0.005


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_export_equals_pytorch_on_the_test_set(fmt, run_id, store, tmp_path, test_images):
    out = tmp_path / f"net.{fmt}"
    done = export_model(run_id, fmt, out, images=test_images, tracking_uri=store)
    assert done.path == out and done.images_checked == 10_000
    assert done.max_difference <= TOLERANCE
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no part file left
    model = run_model(run_id, tracking_uri=store)
    with torch.no_grad():
        expected = model.net(torch.from_numpy(test_images)).numpy()
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = session.run(None, {"pixels": test_images})[0]
    else:
        with torch.no_grad():
            got = torch.export.load(str(out)).module()(torch.from_numpy(test_images)).numpy()
    assert (got.argmax(1) == expected.argmax(1)).all()
    assert np.abs(got - expected).max() <= TOLERANCE


@pytest.mark.slow
def test_export_on_the_command_line(run_id, store, tmp_path, capsys):
    out = tmp_path / "net.onnx"
    assert (
        main(
            [
                "export",
                run_id,
                "--format",
                "onnx",
                "--out",
                str(out),
                "--tracking-uri",
                store,
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["path"] == str(out) and out.is_file()


def write_pngs(folder: Path, images: np.ndarray) -> list[str]:
    folder.mkdir(exist_ok=True)
    paths = []
    for i, image in enumerate(images.astype(np.uint8)):
        path = folder / f"{i}.png"
        Image.fromarray(image[0]).save(path)
        paths.append(str(path))
    return paths


@pytest.mark.slow
def test_predict_png_files_and_an_idx_file(run_id, store, tmp_path, test_images, capsys):
    paths = write_pngs(tmp_path / "pngs", test_images[:20])
    assert main(["predict", run_id, *paths, "--tracking-uri", store, "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    model = run_model(run_id, tracking_uri=store)
    with torch.no_grad():
        expected = model.net(torch.from_numpy(test_images[:20]))
    assert [f["file"] for f in found] == paths
    assert [f["class_index"] for f in found] == expected.argmax(1).tolist()
    assert found[0]["class"] == model.class_names[found[0]["class_index"]]
    assert abs(sum(found[0]["probabilities"].values()) - 1) < 1e-5

    idx = f"{require('fashion-mnist')}/t10k-images-idx3-ubyte.gz"
    assert main(["predict", run_id, idx, "--tracking-uri", store]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 10_000 and lines[0].startswith(f"{idx}[0]: ")
    assert lines[0].split(": ")[1].split(" (")[0] == model.class_names[found[0]["class_index"]]


@pytest.mark.slow
def test_bad_input_is_one_line_and_writes_nothing(run_id, store, tmp_path, capsys):
    rgb = tmp_path / "rgb.png"
    Image.fromarray(np.full((28, 28, 3), [200, 10, 10], np.uint8)).save(rgb)
    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(big)
    corrupt = tmp_path / "corrupt.png"
    noise = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    Image.fromarray(noise).save(corrupt)
    corrupt.write_bytes(corrupt.read_bytes()[:400])  # the header whole, the pixels cut
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    no_model = train(
        None,
        [*SMALL, "train.epochs=1", "tracking.log_model=false"],
        tracking_uri=store,
        progress=False,
    ).run_id
    cases = [
        (["predict", "0" * 32, str(big)], 2, "expected a run in"),
        (["predict", no_model, str(big)], 2, "expected an MLflow model (mlflow_model/), got none"),
        (["predict", run_id, str(big)], 3, "image size: expected 1x28x28"),
        (["predict", run_id, str(rgb)], 3, "channels: expected a grayscale image"),
        (["predict", run_id, str(corrupt)], 3, "image: expected a complete image"),
        (["predict", run_id, str(text)], 3, "expected a PNG, JPEG or IDX file"),
        (
            ["export", run_id, "--format", "onnx", "--out", str(tmp_path / "no" / "x.onnx")],
            2,
            "--out: expected a file in an existing folder",
        ),
    ]
    before = sorted(p.name for p in tmp_path.iterdir())
    for args, code, message in cases:
        assert main([*args, "--tracking-uri", store]) == code, args
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


SEARCH_CONFIG = """
[data]
train_limit = 1000
val_fraction = 0.01

[model]
filters = 8
hidden_units = [32]

[train]
epochs = 1
threads = 1

[search]
trials = 2
register = "fashion-cnn"

[search.space]
"model.filters" = { dist = "choice", options = [4, 8] }
"""


@pytest.mark.slow
def test_a_search_registers_its_best_model(store, tmp_path):
    import mlflow

    (tmp_path / "search.toml").write_text(SEARCH_CONFIG)
    result = tune(tmp_path / "search.toml", tracking_uri=store, progress=False)
    assert result.registered is not None and result.registered.name == "fashion-cnn"
    client = MlflowClient(store)
    (version,) = client.search_model_versions("name='fashion-cnn'")
    assert version.run_id == result.best_run_id
    assert float(version.tags[result.objective]) == pytest.approx(result.best_value, rel=1e-5)
    mlflow.set_tracking_uri(store)
    model = mlflow.pyfunc.load_model("models:/fashion-cnn/1")
    assert model.predict(np.zeros((2, 1, 28, 28), np.float32)).shape == (2, 10)


def test_tune_register_on_the_command_line(store, tmp_path, capsys):
    (tmp_path / "search.toml").write_text(SEARCH_CONFIG.replace("fashion-cnn", "unused"))
    args = ["tune", str(tmp_path / "search.toml"), "--register", "cli-cnn", "--trials", "1"]
    assert main([*args, "--tracking-uri", store, "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["registered"]["name"] == "cli-cnn" and out["registered"]["version"] == "1"
    assert out["registered"]["run_id"] == out["best_run_id"]


@pytest.mark.slow
def test_every_command_takes_a_run_reference_the_same_way(run_id, store, tmp_path, capsys):
    from cnnlab.api import load_run

    png = write_pngs(tmp_path / "pngs", np.zeros((1, 1, 28, 28), np.uint8))
    for reference in (run_id, f"runs:/{run_id}", f"runs:/{run_id}/mlflow_model"):
        assert load_run(reference, tracking_uri=store).run_id == run_id
        out = tmp_path / "net.pt2"
        args = ["export", reference, "--format", "pt2", "--out", str(out), "--tracking-uri", store]
        assert main(args) == 0, capsys.readouterr().err
        assert main(["predict", reference, *png, "--tracking-uri", store]) == 0
        assert capsys.readouterr().out.count("\n") == 2  # export's line, predict's line
