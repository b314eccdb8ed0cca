"""The one way in to a search: trials one at a time in this process (search._search), or
`jobs` worker processes on one Optuna study, or Ray tasks on a cluster (search._parallel)."""

from __future__ import annotations

from collections.abc import Callable

from cnnlab.config import Config
from cnnlab.search._parallel import run_on_cluster, run_parallel
from cnnlab.search._records import TrialRecord
from cnnlab.search._search import SearchResult, run_one


def run_search(
    cfg: Config,
    *,
    tracking_uri: str | None = None,
    data_dir: str | None = None,
    on_trial: Callable[[TrialRecord], None] | None = None,
    jobs: int = 1,
    ray=None,
) -> SearchResult:
    """Runs (or resumes) cfg's search, `jobs` trials at once, or as Ray tasks on the cluster
    `ray` (an address, "local", or a joined cnnlab.cluster.Cluster); KeyboardInterrupt ends the
    parent KILLED and re-raises. `on_trial` is called in this process with each trial's
    record."""
    kwargs = {"tracking_uri": tracking_uri, "data_dir": data_dir, "on_trial": on_trial}
    if ray is not None:
        return run_on_cluster(cfg, ray, **kwargs)
    if jobs > 1:
        return run_parallel(cfg, jobs, **kwargs)
    return run_one(cfg, **kwargs)
