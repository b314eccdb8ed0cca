"""Runs: one training run end to end, built, recorded and resumable.

    from cnnlab.runs import train_run
    outcome = train_run(load_config("configs/default.toml"))
    outcome.run_id, outcome.result.test_accuracy

build(cfg) checks and builds a config's network before any data is loaded; resume_config(run_id)
finds what a run cut short needs to go on; resume_or_train(cfg, cut_run_id) continues it from its
checkpoint, or trains afresh; fetch_checkpoint(uri, run_id) brings the checkpoint a run logged
(tracking.upload_checkpoint) to a machine that did not write it.
"""

from cnnlab.runs._build import Built, architecture_params, build
from cnnlab.runs._resume import RESUMABLE, fetch_checkpoint, resume_config
from cnnlab.runs._train import Outcome, default_run_name, resume_or_train, train_run

__all__ = [
    "RESUMABLE",
    "Built",
    "Outcome",
    "architecture_params",
    "build",
    "default_run_name",
    "fetch_checkpoint",
    "resume_config",
    "resume_or_train",
    "train_run",
]
