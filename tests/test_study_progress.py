"""A study's progress line reaches its total when a search counts samples it refused."""

import pytest

from cnnlab.search import TrialRecord
from cnnlab.study import run_study
from cnnlab.tracking import default_uri

REFUSED = ("failed", "invalid_architecture", 0)  # status, cnnlab.fail_reason, epochs

TUNE_STEP = """
[step]
kind = "tune"

[train]
epochs = 2
steps_per_epoch = 3

[search]
trials = 3
count_invalid = {count_invalid}
"""


def _fake_tune(outcomes):
    """A search that reports the given (status, reason, epochs) trials and trains nothing."""

    def tune(cfg, *, tracking_uri, data_dir, on_trial):
        for number, (status, reason, epochs) in enumerate(outcomes):
            on_trial(TrialRecord(number, {}, status, epochs=epochs, reason=reason))

    return tune


def _study(tmp_path, count_invalid: str, outcomes):
    study = tmp_path / "mini"
    study.mkdir()
    (study / "1-search.toml").write_text(TUNE_STEP.format(count_invalid=count_invalid))
    lines, runs = [], []
    run_study(
        study,
        tracking_uri=default_uri(tmp_path / "runs"),
        tune=_fake_tune(outcomes),
        echo=lines.append,
        on_run=lambda done, planned: runs.append((done, planned)),
    )
    return [line for line in lines if "trial" in line], runs


@pytest.mark.slow
def test_refused_samples_that_count_as_trials_bring_progress_to_its_total(tmp_path):
    lines, runs = _study(tmp_path, "true", [REFUSED, ("ok", "", 2), ("pruned", "", 1)])
    assert runs == [(1, 3), (2, 3), (3, 3)]
    assert "run 3/3" in lines[-1]
    # No time left once every counted trial has ended, however few images it trained.
    assert "left" not in lines[-1]


@pytest.mark.slow
def test_samples_drawn_again_are_not_runs(tmp_path):
    lines, runs = _study(tmp_path, "false", [REFUSED, *[("ok", "", 2)] * 3])
    assert runs == [(1, 3), (2, 3), (3, 3)]
    assert "run 0/3" in lines[0] and "run 3/3" in lines[-1] and "left" not in lines[-1]
