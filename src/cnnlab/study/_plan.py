"""What a pass over a study step still has to run: its (variant, seed) pairs without a FINISHED
run, each with its planned images (for the estimate of the time left), and the runs a kill or an
interrupt cut short, to go on from their checkpoints.

    plan = plan_step(step, "experiments", quick=False, seeds=None, store=store)
    plan.skip          # the store marks the step complete as it is now
    plan.jobs          # what is still to run
    cut = cut_runs(store, "experiments/1-baseline", plan.digest)   # (variant, seed) -> run id
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from cnnlab.config import Config
from cnnlab.data import InfoCache
from cnnlab.study._steps import Step, Variant, step_hash
from cnnlab.tracking import Store
from cnnlab.tracking.tags import ADDED_TAG, SEED_TAG, STEP_COMPLETE_TAG, STEP_HASH_TAG, VARIANT_TAG

# Each dataset's size once per process, for the estimate of the time left.
_INFOS = InfoCache()


@dataclass
class Job:
    step: Step
    variant: Variant
    seed: int | None  # None: a tune step's search
    images: int  # planned training images, for the estimate of the time left
    name: str  # the run's name: the variant's, with its seed when it has several


@dataclass
class Plan:
    jobs: list[Job]  # what is still to run
    digest: str  # the step's configs, hashed (its runs carry it)
    complete: str  # the step's completion mark: its configs and its seeds, hashed
    seeds: dict[str, list[int]]  # variant -> its seeds: the runs the report takes
    skip: bool = False  # the store marks the step complete as it is now


def plan_step(step: Step, prefix: str, quick: bool, seeds, store: Store) -> Plan:
    experiment = f"{prefix}/{step.name}"
    exp = store.find_experiment(experiment)
    added = _added(exp.tags if exp is not None else {}, step)
    pairs = [
        (v, s)
        for v in step.variants
        for s in dict.fromkeys(step.seed_list(v, seeds) + added.get(v.name, []))
    ]
    digest = step_hash(step, quick)
    complete = f"{digest}:{_seeds_key(pairs)}"
    by_variant = {v.name: [s for w, s in pairs if w is v] for v in step.variants}
    if exp is not None and exp.tags.get(STEP_COMPLETE_TAG) == complete:
        return Plan([], digest, complete, by_variant, skip=True)
    if step.kind == "tune":
        cfg = step.config(step.variants[0], quick)
        images = cfg.search.trials * _images(cfg)
        job = Job(step, step.variants[0], None, images, step.name)
        return Plan([job], digest, complete, {})
    done = _finished(store, exp, digest)
    several = len(pairs) > len(step.variants)
    jobs = [
        Job(
            step,
            v,
            s,
            _images(step.config(v, quick, s)),
            f"{v.name} seed={s}" if several else v.name,
        )
        for v, s in pairs
        if (v.name, s) not in done
    ]
    return Plan(jobs, digest, complete, by_variant)


def _finished(store: Store, exp, digest: str) -> set[tuple[str, int | None]]:
    if exp is None:
        return set()
    where = f"tags.`{STEP_HASH_TAG}` = '{digest}' and attributes.status = 'FINISHED'"
    runs = store.search_runs([exp.experiment_id], where, max_results=5000)
    return {(r.data.tags.get(VARIANT_TAG), _int(r.data.tags.get(SEED_TAG))) for r in runs}


def cut_runs(store: Store, experiment: str, digest: str) -> dict[tuple[str, int | None], str]:
    """(variant, seed) -> the newest of its runs that a kill or an interrupt cut short (KILLED,
    or RUNNING with its process gone): the rerun goes on from its checkpoint."""
    exp = store.find_experiment(experiment)
    if exp is None:
        return {}
    where = f"tags.`{STEP_HASH_TAG}` = '{digest}'"
    runs = store.search_runs([exp.experiment_id], where, ["attributes.start_time DESC"])
    found: dict[tuple[str, int | None], str] = {}
    for r in runs:
        if r.info.status in ("KILLED", "RUNNING"):
            key = (r.data.tags.get(VARIANT_TAG), _int(r.data.tags.get(SEED_TAG)))
            found.setdefault(key, r.info.run_id)
    return found


def _added(tags: dict[str, str], step: Step) -> dict[str, list[int]]:
    """Seeds --until-decided added to the step's variants (a train step's), round by round."""
    if step.kind != "train":
        return {}
    found: dict[str, list[int]] = {}
    for entry in json.loads(tags.get(ADDED_TAG, "[]")):
        found.setdefault(entry["variant"], []).extend(int(s) for s in entry["seeds"])
    return found


def _images(cfg: Config) -> int:
    t = cfg.train
    if t.steps_per_epoch:
        return t.epochs * t.steps_per_epoch * t.batch_size
    train = int(_INFOS(cfg.data).train_images * (1 - cfg.data.val_fraction))
    return t.epochs * (min(train, cfg.data.train_limit) if cfg.data.train_limit else train)


def runs_of(job: Job) -> int:
    if job.seed is not None:
        return 1
    return job.step.config(job.variant, quick=False).search.trials


def _seeds_key(pairs: list[tuple[Variant, int]]) -> str:
    text = json.dumps([(v.name, s) for v, s in pairs])
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
