"""The study as evidence, end to end: seeds -> MLflow -> report with bands and verdicts."""

import re
from pathlib import Path

import mlflow
import numpy as np
import pytest

from cnnlab.cli import main
from cnnlab.reports import write_report
from cnnlab.study import run_study

# 3,000 training images keep the seeds' spread well inside the "same" claim's ten points;
# 1,200 validation images and no MLflow model keep each run short.
TINY = """
[data]
train_limit = 3000
val_fraction = 0.02

[model]
filters = 8
hidden_units = [32]

[train]
epochs = 3
lr = 3e-3
eval_batch_size = 1000

[tracking]
log_model = false
"""

# A sane learning rate against one too small to learn in three epochs (TINY), 3 seeds each;
# then the sane config again with 3 other seeds: a pair identical but for the seed. The first
# step carries the study's published figure, so the report has its study table.
STEP_1 = """
[step]
description = "Learning rate: sane against crawling."
published = { setting = "lr 3e-3", accuracy = "85.00%" }
variants = [{ name = "crawl", set = ["train.lr=1e-6"] }, { name = "sane" }]
seeds = [1, 2, 3]
reference = "crawl"
hypothesis = "A sane learning rate learns; 1e-6 does not."
expect = { direction = "better", variant = "sane", reference = "crawl" }
"""
STEP_2 = """
[step]
description = "The sane config again, other seeds."
variants = [{ name = "sane-again" }]
seeds = [4, 5, 6]
reference = "1-lr:sane"
hypothesis = "Only the seed differs, so the accuracy stays within ten points."
expect = { direction = "same", min_difference = 0.1 }
"""


def _row(md: str, first_cell: str) -> str:
    return next(line for line in md.splitlines() if line.startswith(f"| {first_cell} |"))


@pytest.mark.slow
def test_verdicts_tell_a_real_difference_from_seed_noise(
    tmp_path, monkeypatch, fmnist, empty_store
):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    study = tmp_path / "evidence"
    study.mkdir()
    (study / "1-lr.toml").write_text(STEP_1 + TINY)
    (study / "2-again.toml").write_text(STEP_2 + TINY)
    uri = empty_store(tmp_path / "runs" / "mlflow.db")
    results, _ = run_study(study, tracking_uri=uri, echo=lambda text: None)
    assert [r.runs for r in results] == [6, 3]

    write_report(uri, [r.experiment for r in results], tmp_path / "report")
    md = (tmp_path / "report" / "report.md").read_text()
    assert _row(md, "sane (selected)").split("|")[-2].strip() == "better"
    assert "(the reference)" in _row(md, "crawl")
    again = _row(md, "sane-again").split("|")
    assert again[-2].strip() == "inconclusive"  # one vocabulary with the hypotheses
    assert re.search(r"\d+\.\d\d% ± \d+\.\d\d% \(n=3\)", _row(md, "sane-again"))
    # Hypotheses: both confirmed, also under Holm's correction, each with its measured
    # interval and the method that gave it (the variants of a step share their seeds).
    for step in ("1-lr", "2-again"):
        assert [c.strip() for c in _row(md, step).split("|")[-3:-1]] == ["confirmed"] * 2
    interval = r"\+\d+\.\d\d pts \[\+\d+\.\d\d, \+\d+\.\d\d\]"
    assert re.search(rf"sane: {interval} \(blocked, df 2\) \(n=3 vs 3\)", md)
    # The study table gives cnnlab's selected variant as mean ± sd over its seeds: the sane
    # runs' test accuracy as MLflow holds it, summed up here by numpy.
    assert "Quick runs" not in md
    study_row = [cell.strip() for cell in _row(md, results[0].experiment).split("|")[1:-1]]
    assert study_row[1] == "lr 3e-3" and study_row[5] == "sane"
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name(results[0].experiment).experiment_id
    sane = client.search_runs([exp], "tags.`cnnlab.variant` = 'sane'")
    accuracy = np.array([r.data.metrics["test_accuracy"] for r in sane]) * 100
    band = re.fullmatch(r"(\d+\.\d\d)% ± (\d+\.\d\d)% \(n=(\d)\)", study_row[8])
    assert band is not None, study_row
    assert float(band[1]) == pytest.approx(accuracy.mean(), abs=0.006)
    assert float(band[2]) == pytest.approx(accuracy.std(ddof=1), abs=0.006)
    assert int(band[3]) == len(accuracy) == 3


QUICK_TRAIN = """
[step]
description = "Two widths."
published = { setting = "64 filters", accuracy = "86.27%" }
variants = [{ name = "narrow", set = ["model.filters=4"] }, { name = "wide" }]
seeds = 2
hypothesis = "Wider is better."
expect = { direction = "better", variant = "wide", reference = "narrow" }
"""
QUICK_TUNE = """
[step]
kind = "tune"
description = "A tiny search."
published = { accuracy = "79.88%" }

[search]
engine = "hyperopt"
trials = 3
seed = 1

[search.space]
"model.filters" = { dist = "quniform", low = 4, high = 12, q = 4, int = true }
"train.lr" = { dist = "loguniform", low = 1e-4, high = 1e-2 }
"""


@pytest.mark.slow
def test_quick_study_through_the_cli_writes_every_section(tmp_path, monkeypatch, fmnist):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    study = Path("mini")
    study.mkdir()
    small = TINY.replace("train_limit = 3000", "train_limit = 1000")  # no verdict is asked
    (study / "1-search.toml").write_text(QUICK_TUNE + small)
    (study / "2-widths.toml").write_text(QUICK_TRAIN + small)
    assert main(["study", "mini", "--quick", "--quiet", "--out", "out"]) == 0
    md = Path("out/report.md").read_text()
    html = Path("out/report.html").read_text()
    for text in (md, html):
        head = text[: text.index("The study next to cnnlab")]
        assert "Quick runs: not comparable with the study" in head  # at the top
        assert "Hypotheses and verdicts" in text and "Wider is better." in text
        assert "not judged: quick runs are too short" in text
        assert "test accuracy vs reference [95% interval]" in text
        assert "importance" in text.lower()  # what the search found
    table = md[md.index("## The study next to cnnlab") :]
    assert "no figure of cnnlab's below compares with the study's" in table.split("|")[0]
    assert re.search(r"\| mini-quick/2-widths \|.*\(n=2\)", md)
    assert {"mini-quick-1-search-importance.svg", "mini-quick-2-widths-val_loss.svg"} <= {
        p.name for p in Path("out").iterdir()
    }


def test_bad_seeds_flag_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("s").mkdir()
    Path("s/1-x.toml").write_text("")
    assert main(["study", "s", "--seeds", "1,x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "cnnlab: error: --seeds: expected a count or a comma-separated list of integers, got '1,x'"
    ]
    assert not Path("cnnlab-runs").exists()


@pytest.mark.parametrize("flag", ["0", "2,2"])
def test_seeds_flag_values_are_checked(flag, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("s").mkdir()
    Path("s/1-x.toml").write_text("")
    assert main(["study", "s", "--seeds", flag]) == 2
    assert (
        "--seeds: expected a count >= 1 or a list of distinct integers" in capsys.readouterr().err
    )
