"""`tune --jobs N`: N worker processes on one Optuna study in a journal file beside the store;
`tune --ray ADDRESS`: the same workers as Ray tasks on a cluster's nodes.

    result = run_parallel(cfg, jobs=4)   # the same SearchResult as run_one's
    result = run_on_cluster(cfg, "local")

A search given `search.storage` is shared already; one without gets a journal file in its state
folder (`<id>.jobs.journal`), so rerunning with --jobs resumes it. The workers are the shared
study's (search._shared): exactly `search.trials` trials, no sample twice, dead workers' trials
closed. TPE proposes each trial from the trials finished when it is asked, so with several
jobs its proposals after the first `n_startup` (random) trials differ from one job's.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from pathlib import Path

from cnnlab._pool import WorkerPool, emit
from cnnlab.config import Config, ConfigError
from cnnlab.search._search import prepare, run_one, search_id, state_path
from cnnlab.tracking import Store, resolve_uri, shown


def run_parallel(
    cfg: Config,
    jobs: int,
    *,
    tracking_uri: str | None = None,
    data_dir: str | None = None,
    on_trial: Callable | None = None,
):
    """Runs cfg's search with `jobs` trials at once; returns the SearchResult with every trial.
    `on_trial` is called here, in this process, with each trial's record as a worker ends it."""
    _check_engine(cfg, f"tune --jobs {jobs}")
    cfg = _with_storage(cfg, tracking_uri)
    prepare(cfg)  # bad input stops here, before any process or run exists
    # The store and experiment made here, once: workers creating a new SQLite store at the
    # same moment would race through its schema migrations.
    Store(resolve_uri(cfg.tracking, tracking_uri)).ensure_experiment(cfg.tracking.experiment)
    with WorkerPool(jobs) as pool:
        items = [(cfg, tracking_uri, data_dir)] * jobs
        results = [r for _, r in pool.run(_worker, items, on_event=on_trial)]
    return max(results, key=lambda r: len(r.records))  # the last to end saw every trial


def run_on_cluster(
    cfg: Config,
    ray,
    *,
    tracking_uri: str | None = None,
    data_dir: str | None = None,
    on_trial: Callable | None = None,
):
    """Runs cfg's search as Ray tasks on a cluster (`ray`: its address, "local", or a joined
    cnnlab.cluster.Cluster): as many workers on the shared study as the cluster has room for
    trials of `train.threads` CPUs (one when 0), each a task that a lost node's retry starts
    again; the sampler and pruner stay Optuna's, in the study's storage. On one node the
    storage may be the journal file beside the store; a cluster of several needs one every node
    reaches (search.storage = postgresql://...)."""
    from cnnlab.cluster import RayPool

    shown_as = f"--ray {getattr(ray, 'address', ray)}"
    _check_engine(cfg, shown_as)
    prepare(cfg)  # bad input stops here, before the cluster is joined
    uri = resolve_uri(cfg.tracking, tracking_uri)
    with _joined(ray, uri) as cluster:
        if cluster.nodes > 1:
            _check_shared_storage(cfg, shown_as, cluster.nodes)
        cfg = _with_storage(cfg, tracking_uri)
        Store(uri).ensure_experiment(cfg.tracking.experiment)
        cpus = max(1, cfg.train.threads)
        workers = min(cfg.search.trials, max(1, int(cluster.cpus // cpus)))
        gpu = cfg.train.device == "cuda" or (cfg.train.device == "auto" and cluster.gpus > 0)
        resources = {"num_cpus": cpus, "num_gpus": 1 if gpu else 0}
        pool = RayPool(cluster, lambda item: resources)
        items = [(cfg, tracking_uri, data_dir)] * workers
        results = [r for _, r in pool.run(_worker, items, on_event=on_trial)]
    return max(results, key=lambda r: len(r.records))


@contextlib.contextmanager
def _joined(ray, uri: str):
    """A cluster the caller joined already (a study's) stays open; an address is joined here."""
    if not isinstance(ray, str):
        yield ray
        return
    from cnnlab.cluster import connect

    with connect(ray, uri) as cluster:
        yield cluster


def _check_engine(cfg: Config, option: str) -> None:
    if cfg.search.engine != "optuna":
        raise ConfigError(
            f'{option}: trials at once need search.engine = "optuna", '
            f"got {cfg.search.engine!r} (Hyperopt proposes one trial at a time)"
        )


def spreads_over(cfg: Config, nodes: int) -> bool:
    """Whether cfg's search can run as tasks on a cluster of `nodes` nodes: Optuna's, with a
    storage every node reaches when there are several."""
    storage = cfg.search.storage or ""
    shared = storage and not storage.startswith(("journal://", "sqlite:"))
    return cfg.search.engine == "optuna" and (nodes == 1 or bool(shared))


def _check_shared_storage(cfg: Config, option: str, nodes: int) -> None:
    storage = cfg.search.storage or ""
    if not spreads_over(cfg, nodes):
        got = shown(storage) if storage else "none (a journal file on this machine)"
        raise ConfigError(
            f"{option}: a search over {nodes} nodes needs a storage every node reaches "
            f"(expected search.storage = postgresql://..., got {got})"
        )


def _with_storage(cfg: Config, tracking_uri: str | None) -> Config:
    if cfg.search.storage:
        return cfg
    uri = resolve_uri(cfg.tracking, tracking_uri)
    sid = search_id(cfg)  # the storage is no part of the id: the same search either way
    journal = state_path(cfg, uri, sid).with_name(f"{sid}.jobs.journal")
    journal.parent.mkdir(parents=True, exist_ok=True)
    storage = f"journal://{Path(journal).resolve()}"
    return dataclasses.replace(cfg, search=dataclasses.replace(cfg.search, storage=storage))


def _worker(cfg: Config, tracking_uri: str | None, data_dir: str | None):
    return run_one(cfg, tracking_uri=tracking_uri, data_dir=data_dir, on_trial=emit)
