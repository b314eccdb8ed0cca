"""The Python API as a notebook uses it: only `import cnnlab`, results rather than printing."""

import pandas as pd
import pytest
import torch

import cnnlab
from cnnlab.tracking import store_file

TINY = {
    "data": {"train_limit": 1000, "val_fraction": 0.02},
    "model": {"filters": 8, "hidden_units": [32]},
    "train": {"epochs": 2, "eval_batch_size": 1000},
}
SPACE = {
    "model.filters": {"dist": "choice", "options": [4, 8]},
    "train.lr": {"dist": "loguniform", "low": 1e-3, "high": 1e-2},
}


def test_load_config_takes_dicts_paths_and_overrides_strictly(tmp_path):
    cfg = cnnlab.load_config(TINY, {"train.lr": 3e-4})
    assert (cfg.model.filters, cfg.train.lr, cfg.train.epochs) == (8, 3e-4, 2)
    assert cnnlab.load_config(cfg, ["train.epochs=5"]).train.epochs == 5
    assert cfg.train.epochs == 2  # the source is not changed
    (tmp_path / "c.toml").write_text("[train]\nepochs = 4\n")
    assert cnnlab.load_config(tmp_path / "c.toml").train.epochs == 4
    with pytest.raises(cnnlab.ConfigError, match="train.lrr: unknown key"):
        cnnlab.load_config({"train": {"lrr": 1}})
    with pytest.raises(cnnlab.ConfigError, match="model.filters: expected > 0"):
        cnnlab.load_config(TINY, {"model.filters": -1})


def test_summary_shows_as_text_and_html():
    table = cnnlab.summary(TINY, {"model.num_layers": 3, "model.head_pool": "avg"})
    assert table.final_map == (8, 2, 2) and "2x2" in str(table)
    assert table._repr_html_().startswith("<pre>") and "Conv2d" in table._repr_html_()


@pytest.mark.slow
def test_train_tune_report_and_reload_from_python(uri, tmp_path, fmnist, empty_store):
    empty_store(store_file(uri))
    run = cnnlab.train(TINY, tracking_uri=uri, progress=False)
    assert isinstance(run.history, pd.DataFrame) and list(run.history["epoch"]) == [1, 2]
    assert {"train_loss", "val_loss", "val_accuracy"} <= set(run.history.columns)
    assert not run.model.training and 0.3 < run.metrics["test_accuracy"] <= 1
    assert run.run_id in run._repr_html_() and "test_accuracy" in str(run)

    searches = {}
    for engine in ("hyperopt", "optuna"):
        cfg = cnnlab.load_config(
            {**TINY, "search": {"space": SPACE}}, {"train.epochs": 1, "tracking.experiment": engine}
        )
        searches[engine] = cnnlab.tune(
            cfg, engine=engine, trials=4, tracking_uri=uri, progress=False
        )
    for engine, search in searches.items():
        trials = search.trials
        assert isinstance(trials, pd.DataFrame) and len(trials) == 4
        assert {"number", "state", "value", "run_id", "model.filters", "train.lr"} <= set(trials)
        assert (trials["state"] == "ok").all()
        assert search.best_value == trials["value"].min()  # val_loss, minimised
        assert search.best_config.model.filters == search.best_params["model.filters"]
        assert search.best_config.train.lr == search.best_params["train.lr"]
        assert search.engine == engine and search.parent_run_id in search._repr_html_()

    written = cnnlab.report(["hyperopt", "optuna"], out=tmp_path / "report", tracking_uri=uri)
    assert written.html.exists() and "optuna" in written.markdown.read_text()

    best = cnnlab.load_run(searches["optuna"].best_run_id, tracking_uri=uri)
    expected = searches["optuna"].best_config
    assert (best.config.model, best.config.train) == (expected.model, expected.train)
    assert not best.model.training and list(best.history["epoch"]) == [1]
    predicted = best.predict(fmnist.test_images)
    accuracy = (predicted == fmnist.test_labels).sum().item() / len(predicted)
    assert accuracy == pytest.approx(best.metrics["test_accuracy"], abs=1e-9)
    model = cnnlab.load_model(f"runs:/{run.run_id}", tracking_uri=uri)
    for a, b in zip(model.state_dict().values(), run.model.state_dict().values()):
        assert torch.equal(a.cpu(), b.cpu())


@pytest.mark.slow
def test_unknown_run_and_run_without_weights_are_clear_errors(uri, empty_store):
    empty_store(store_file(uri))
    run = cnnlab.train(TINY, {"tracking.log_weights": False}, tracking_uri=uri, progress=False)
    with pytest.raises(cnnlab.ConfigError, match="run 'nope': expected a run in .*no such run"):
        cnnlab.load_run("nope", tracking_uri=uri)
    with pytest.raises(cnnlab.ConfigError, match="no model to load"):
        cnnlab.load_model(run.run_id, tracking_uri=uri)


def test_import_cnnlab_is_light_and_lists_its_api():
    import subprocess
    import sys

    code = "import cnnlab, sys; print('torch' in sys.modules, sorted(cnnlab.__all__)[:3])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.startswith("False")  # the functions load on first use
    assert {"train", "tune", "load_run", "run_study", "report", "summary"} <= set(dir(cnnlab))
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        cnnlab.trian  # noqa: B018


@pytest.mark.slow
def test_calls_leave_the_process_as_they_found_it(uri, monkeypatch, empty_store):
    import os
    import signal

    import mlflow

    empty_store(store_file(uri))
    monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY", raising=False)
    torch.set_num_threads(1)
    before = (dict(os.environ), signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    for _ in range(2):  # as a notebook cell run twice
        cnnlab.train(TINY, {"train.threads": 2}, tracking_uri=uri, progress=False)
        assert torch.get_num_threads() == 1
        assert mlflow.active_run() is None
        after = (
            dict(os.environ),
            signal.getsignal(signal.SIGINT),
            signal.getsignal(signal.SIGTERM),
        )
        assert after == before


@pytest.mark.slow
def test_run_study_returns_its_steps_and_report(uri, tmp_path, fmnist, empty_store):
    empty_store(store_file(uri))
    study = tmp_path / "mini"
    study.mkdir()
    (study / "1-one.toml").write_text(
        '[step]\nvariants = [{ name = "a" }, { name = "b", set = ["model.filters=4"] }]\n'
        "seeds = 2\n[data]\ntrain_limit = 500\nval_fraction = 0.02\n"
        "[model]\nfilters = 8\nhidden_units = [16]\n[train]\nepochs = 1\n"
        "[tracking]\nlog_model = false\n"
    )
    lines = []
    result = cnnlab.run_study(
        study, out=tmp_path / "out", tracking_uri=uri, progress=False, echo=lines.append
    )
    assert [(s.step, s.runs, s.skipped) for s in result.steps] == [("1-one", 4, False)]
    assert result.report.html.exists()
    assert "test accuracy vs reference" in result.report.markdown.read_text()
    assert "1-one" in result._repr_html_() and "4 run(s)" in str(result)
    assert len([line for line in lines if "seed=" in line]) == 4
    again = cnnlab.run_study(study, out=tmp_path / "out", tracking_uri=uri, progress=False)
    assert again.steps[0].skipped
