"""`cnnlab study --until-decided`: after a pass over the steps, rounds of seeds added to the
variants an open hypothesis compares, each round recorded on the step's experiment so that an
interrupted study goes on from the round after its last.

    add_rounds(context, every_step, steps_run, cap, results, tune)   # see study._decide

The planned looks of each judged step are stored (LOOKS_TAG) for the report, and every round's
seeds (ADDED_TAG) for the next pass's plan, which runs them like the step's own seeds.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from cnnlab.study._decide import Request, Sequential, added_entry, until_decided
from cnnlab.study._steps import Step
from cnnlab.tracking import Store
from cnnlab.tracking.tags import ADDED_TAG, LOOKS_TAG

if TYPE_CHECKING:
    from cnnlab.study._run import _Context


def add_rounds(
    context: _Context, every: list[Step], judged_steps: list[Step], cap: int, results, tune
) -> None:
    """Seeds added to the variants open hypotheses compare, round by round (study._decide);
    each round is one more pass of `context` over the steps it touched (`tune` runs a tune
    step's search there, though rounds add seeds to train steps only)."""
    from cnnlab.reports import judge_experiments

    by_experiment = {f"{context.prefix}/{s.name}": s for s in every}
    plans = {}
    for step in judged_steps:
        if step.kind != "train" or not step.expect:
            continue
        experiment = f"{context.prefix}/{step.name}"
        start = min(len(step.seed_list(v, context.seeds)) for v in step.variants)
        plans[experiment] = _record_looks(context.store, experiment, Sequential(start, cap))
    counts = {r.experiment: r for r in results}

    def judge():
        return judge_experiments(context.uri, list(plans))

    def extend(requests: list[Request], number: int) -> int:
        touched = []
        for request in requests:
            if request.experiment not in by_experiment:
                continue  # a reference outside this study folder: nothing here can run it
            exp_id = context.store.ensure_experiment(request.experiment)
            entries = json.loads(context.store.experiment(exp_id).tags.get(ADDED_TAG, "[]"))
            entries.append(added_entry(request, number))
            context.store.set_experiment_tag(exp_id, ADDED_TAG, json.dumps(entries))
            step = by_experiment[request.experiment]
            if step not in touched:
                touched.append(step)
        made = 0
        for r in context.run(sorted(touched, key=every.index), tune):
            made += r.runs
            if r.experiment in counts:
                counts[r.experiment].added_runs += r.runs
        return made

    until_decided(judge, extend, plans, _next_round(context.store, by_experiment), context.echo)


def _record_looks(store: Store, experiment: str, plan: Sequential) -> Sequential:
    """The step's planned looks, stored for the report; a plan recorded earlier with more
    looks stands (looks already taken cannot be taken back)."""
    exp_id = store.ensure_experiment(experiment)
    before = json.loads(store.experiment(exp_id).tags.get(LOOKS_TAG, "null"))
    if before is not None and before.get("looks", 1) >= plan.looks:
        plan = Sequential(int(before.get("round", plan.start)), int(before["max_seeds"]))
    else:
        store.set_experiment_tag(exp_id, LOOKS_TAG, plan.tag())
    return plan


def _next_round(store: Store, experiments: dict[str, Step]) -> int:
    """The round after the last one recorded in any step: an interrupted study goes on."""
    last = 1
    for name in experiments:
        exp = store.find_experiment(name)
        if exp is not None:
            for entry in json.loads(exp.tags.get(ADDED_TAG, "[]")):
                last = max(last, int(entry["round"]))
    return last + 1
