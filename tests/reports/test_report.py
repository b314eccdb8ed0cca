import re

import mlflow
import pytest
from env_helpers import require

from cnnlab.export import evaluated_confusion
from cnnlab.reports import PUBLISHED, collect, confusion_from_run, write_report
from cnnlab.reports._collect import differing_params
from cnnlab.runs import train_run
from cnnlab.tracking import Store, default_uri


@pytest.fixture(scope="module")
def store(tmp_path_factory, fmnist, tiny_cfg):
    """Two experiments: one comparing filters (with the study's figures as tags), one single run."""
    from cnnlab.data import make_splits

    uri = default_uri(tmp_path_factory.mktemp("runs"))
    splits = make_splits(fmnist, 0.1, 600, 42)
    splits.val_x, splits.val_y = splits.val_x[:600], splits.val_y[:600]
    splits.test_x, splits.test_y = splits.test_x[:600], splits.test_y[:600]
    ids = []
    for filters in (4, 8):
        cfg = tiny_cfg(f"model.filters={filters}", "tracking.experiment=widths")
        ids.append(train_run(cfg, tracking_uri=uri, splits=splits).run_id)
    cfg = tiny_cfg("tracking.experiment=single")
    train_run(cfg, tracking_uri=uri, splits=splits)
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("widths")
    client.set_experiment_tag(exp.experiment_id, PUBLISHED + "accuracy", "79.88%")
    client.set_experiment_tag(exp.experiment_id, PUBLISHED + "setting", "88 filters")
    return uri, ids


@pytest.mark.slow
def test_collect_reads_runs_and_histories(store):
    uri, ids = store
    (widths,) = collect(uri, ["widths"])
    assert [r.run_id for r in widths.runs] == ids
    assert [step for step, _ in widths.runs[0].history["val_loss"]] == [1, 2]
    assert "model.filters" in differing_params(widths.runs)
    assert "train.lr" not in differing_params(widths.runs)


@pytest.mark.slow
def test_report_writes_markdown_html_and_svgs(store, tmp_path):
    uri, ids = store
    paths = write_report(uri, None, tmp_path)
    names = {p.name for p in paths}
    assert {"report.md", "report.html", "widths-val_loss.svg", "single-train_loss.svg"} <= names
    md = (tmp_path / "report.md").read_text()
    assert "they differ in one parameter: `model.filters`" in md
    assert "validation split" in md and "official test set" in md
    html = (tmp_path / "report.html").read_text()
    assert html.count("<svg") >= 6 and "<?xml" not in html


def test_every_number_comes_from_mlflow(store, tmp_path):
    uri, ids = store
    write_report(uri, ["widths"], tmp_path)
    md = (tmp_path / "report.md").read_text()
    client = mlflow.MlflowClient(uri)
    for run_id in ids:
        metrics = client.get_run(run_id).data.metrics
        assert f"{metrics['test_loss']:.4f}" in md
        assert f"{100 * metrics['test_accuracy']:.2f}%" in md
        assert f"{int(metrics['images_seen']):,}" in md
    # The study's figures appear because they are stored as tags, beside cnnlab's best run.
    row = next(line for line in md.splitlines() if line.startswith("| widths |"))
    assert "79.88%" in row and "88 filters" in row


@pytest.mark.slow
def test_confusion_matrix_of_the_best_run(store, tmp_path):
    uri, ids = store
    (widths,) = collect(uri, ["widths"])
    run = widths.runs[1]
    matrix, names = confusion_from_run(uri, run)
    assert len(matrix) == 10 and len(names) == 10
    # Read from the run: its own test set (the fixture's cut), agreeing with its test metric.
    assert sum(map(sum, matrix)) == 600
    correct = sum(matrix[i][i] for i in range(10))
    assert correct / 600 == pytest.approx(run.metrics["test_accuracy"], abs=1e-9)
    # A run that logged no matrix: its logged weights evaluated again on the whole test set.
    again, _ = evaluated_confusion(Store(uri), run.run_id)
    assert sum(map(sum, again)) == 10000
    write_report(uri, ["widths"], tmp_path, confusion=lambda r: (matrix, names))
    md = (tmp_path / "report.md").read_text()
    assert "best-confusion.svg" in md
    assert re.search(r"\| Trouser \| \d+ \| \d+\.\d\d% \|", md)


def test_unknown_experiment_is_a_clear_error(store, tmp_path):
    from cnnlab.config import ConfigError

    with pytest.raises(ConfigError, match="no experiment named 'nope'"):
        write_report(store[0], ["nope"], tmp_path)


# Headless, no network, no first-run work: the flags that let Chromium start quietly offline.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


@pytest.mark.slow
def test_report_html_renders_with_its_plots_in_chromium(store, tmp_path):
    import subprocess

    from matplotlib.image import imread

    chromium = require("chromium")
    write_report(store[0], ["widths"], tmp_path)
    page = (tmp_path / "report.html").as_uri()
    base = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(
        [*base, "--dump-dom", page], capture_output=True, text=True, timeout=120
    ).stdout
    assert dom.count("<svg") == 3 and dom.count("<figure") == 3  # the three curve plots
    assert "<table>" in dom and "model.filters" in dom
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*base, f"--screenshot={shot}", "--window-size=1200,2400", page],
        capture_output=True,
        timeout=120,
        check=True,
    )
    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (2400, 1200)
    # Matplotlib's first line colour (tab:blue) is on the page: the plots were drawn.
    blue = (abs(pixels - [0x1F / 255, 0x77 / 255, 0xB4 / 255]).sum(axis=-1) < 0.05).sum()
    assert blue > 200
