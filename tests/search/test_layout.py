"""The parent run's summary: what every worker of a shared search logs when it finishes."""

from __future__ import annotations

import mlflow

from cnnlab.search import TrialRecord
from cnnlab.search._layout import SearchLayout


def test_a_summary_already_on_the_parent_is_not_logged_again(store, experiment):
    layout = SearchLayout(store, experiment, "sid-summary")
    layout.open_parent("search", {}, {}, {})
    ok = TrialRecord(0, {"train.lr": 0.1}, "ok", value=0.5)
    failed = TrialRecord(1, {"train.lr": 9.0}, "failed", reason="diverged", error="nan")
    layout.finish([ok, failed], "val_loss", maximize=False)
    layout.finish([ok, failed], "val_loss", maximize=False)  # a second worker, same view
    better = TrialRecord(2, {"train.lr": 0.01}, "ok", value=0.3)
    layout.finish([ok, failed, better], "val_loss", maximize=False)  # a later one saw more

    client = mlflow.MlflowClient(store)
    history = {
        key: sorted((m.step, m.value) for m in client.get_metric_history(layout.parent_id, key))
        for key in ("trials_total", "trials_failed", "best_value")
    }
    assert history == {
        "trials_total": [(2, 2.0), (3, 3.0)],
        "trials_failed": [(2, 1.0)],  # unchanged by the third trial
        "best_value": [(2, 0.5), (3, 0.3)],
    }
    parent = client.get_run(layout.parent_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["best_trial"] == "2"
