"""The advisor's diagnoses on hand-made study steps (no training): each rule fires where it
should, with its numbers, a rule on a minority of seeds is a note, and a healthy step is quiet."""

import json

from cnnlab.advisor import KINDS, Diagnosis, diagnose
from cnnlab.reports import ExperimentRecord, Judged, Part, RunRecord

SEEDS = (42, 43, 44)
PARAMS = {
    "train.epochs": "20", "train.lr": "0.001", "train.weight_decay": "1e-05",
    "model.num_layers": "2", "model.kernel_size": "3", "model.dropout": "0.0",
    "arch.final_map": "64x6x6", "arch.spatial_chain": "28 -> 28 -> 14 -> 12 -> 6",
}  # fmt: skip
# Validation loss falls for 13 of 20 epochs, then flattens (best epoch 13, 65% of the run);
# training loss falls throughout, below it at the end.
HEALTHY_VAL = [0.8 - 0.04 * i for i in range(13)] + [
    0.321,
    0.322,
    0.321,
    0.323,
    0.322,
    0.323,
    0.324,
]
HEALTHY_TRAIN = [0.9 - 0.035 * i for i in range(20)]


def run(seed, val, train, variant="v", status="FINISHED", params=None, tags=None, name=None):
    history = {"val_loss": list(enumerate(val, 1)), "train_loss": list(enumerate(train, 1))}
    metrics = {"val_loss": val[-1], "train_loss": train[-1], "best_val_loss": min(val)}
    if status == "FINISHED":
        metrics["test_accuracy"] = 0.9
    tags = {"cnnlab.variant": variant, "cnnlab.seed": str(seed), **(tags or {})}
    name = name or f"{variant} seed={seed}"
    return RunRecord(name, name, "s", status, seed, {**PARAMS, **(params or {})}, metrics, tags,
                     history)  # fmt: skip


def step(runs, **tags):
    return ExperimentRecord("experiments/2-step", "1", tags, runs)


def seeds(curves, **kw):
    """One run per seed: curves is [(val, train)] or one (val, train) for every seed."""
    curves = curves if isinstance(curves, list) else [curves] * len(SEEDS)
    return [run(seed, [v + i * 0.004 for v in val], train, **kw)
            for i, (seed, (val, train)) in enumerate(zip(SEEDS, curves))]  # fmt: skip


def kinds(found: list[Diagnosis]) -> list[str]:
    return [d.kind for d in found]


def test_a_healthy_step_fires_nothing():
    assert diagnose(step(seeds((HEALTHY_VAL, HEALTHY_TRAIN)))) == []
    assert diagnose(step([run(1, HEALTHY_VAL, HEALTHY_TRAIN)])) == []


# The study's 6x6 model (step 3 of experiments/) at 20 course epochs, seed 42, as cnnlab
# recorded it on an AMD EPYC 2-core (2026-12-06): its best epoch is the last, but the curve has
# flattened (the last quarter brings 6% of the fall), so training longer is not proposed.
STUDY_6X6_VAL = [0.6022, 0.4971, 0.4233, 0.4232, 0.4103, 0.3606, 0.3883, 0.3249, 0.3394,
                 0.3084, 0.3099, 0.3415, 0.2945, 0.29, 0.2942, 0.288, 0.274, 0.286, 0.269,
                 0.2675]  # fmt: skip
STUDY_6X6_TRAIN = [0.8951, 0.535, 0.4604, 0.4253, 0.4105, 0.3766, 0.3431, 0.3357, 0.3007,
                   0.2979, 0.317, 0.2884, 0.2985, 0.2727, 0.269, 0.2748, 0.2923, 0.2533, 0.2463,
                   0.2481]  # fmt: skip


def test_the_studys_6x6_model_at_20_epochs_raises_no_alarm():
    assert diagnose(step([run(42, STUDY_6X6_VAL, STUDY_6X6_TRAIN)])) == []
    # The same curve cut at 8 epochs, still falling steeply (and training loss above validation
    # loss, as the study read under-fitting), is one to train longer.
    (cut,) = diagnose(step([run(42, STUDY_6X6_VAL[:8], STUDY_6X6_TRAIN[:8])]))
    assert cut.kind == "underfitting" and cut.change == {"train.epochs": 40}


def test_a_run_that_diverged_on_most_seeds_proposes_a_lower_learning_rate():
    failure = {"cnnlab.failure": "diverged: training loss became nan in epoch 2"}
    runs = [run(s, [2.0], [2.3], status="FAILED", tags=failure) for s in SEEDS[:2]]
    # The tracker's own record of it, on a run with no cnnlab.failure, reads the same.
    error = {"cnnlab.error": "TrainingDiverged: training loss became inf in epoch 3"}
    runs += [run(44, [2.0, 1.9], [2.3, 2.0], status="FAILED", tags=error)]
    runs += [run(45, HEALTHY_VAL, HEALTHY_TRAIN)]
    (found,) = diagnose(step(runs))
    assert (found.kind, found.held, found.judged, found.proposal) == ("divergence", 3, 4, True)
    assert found.evidence.startswith("holds on 3 seeds of 4: seed 42: FAILED, diverged: training")
    assert "seed 44: FAILED, diverged: training loss became inf in epoch 3" in found.evidence
    assert found.change == {"train.lr": 0.0001}
    assert found.hypothesis.startswith("Training with a 10x lower learning rate (0.0001 instead")
    assert found.expect == {"metric": "test_accuracy", "direction": "better"}
    assert found.score == max(d.score for d in diagnose(step(runs)))


def test_a_loss_spike_on_one_seed_of_three_is_a_note():
    spiked = HEALTHY_TRAIN[:5] + [3.5] + HEALTHY_TRAIN[6:]  # 4.6x the minimum before it
    runs = seeds(
        [(HEALTHY_VAL, HEALTHY_TRAIN), (HEALTHY_VAL, spiked), (HEALTHY_VAL, HEALTHY_TRAIN)]
    )
    (found,) = diagnose(step(runs))
    assert (found.kind, found.held, found.judged, found.proposal) == ("divergence", 1, 3, False)
    assert found.evidence == (
        "holds on 1 seed of 3: seed 43: train_loss 3.5 in epoch 6, 4.6x its minimum 0.76"
    )
    assert (found.change, found.hypothesis, found.expect) == ({}, "", None)
    below = HEALTHY_TRAIN[:5] + [2.9] + HEALTHY_TRAIN[6:]  # 3.8x: under DIVERGE_FACTOR
    assert diagnose(step(seeds((HEALTHY_VAL, below)))) == []


def test_a_2x2_map_proposes_removing_the_last_block():
    collapsed = {"model.num_layers": "3", "arch.final_map": "64x2x2",
                 "arch.spatial_chain": "28 -> 28 -> 14 -> 12 -> 6 -> 4 -> 2"}  # fmt: skip
    (found,) = diagnose(step(seeds((HEALTHY_VAL, HEALTHY_TRAIN), params=collapsed)))
    assert (found.kind, found.held, found.judged, found.proposal) == ("collapsed_map", 3, 3, True)
    assert found.evidence.startswith("final map 64x2x2 (spatial chain 28 -> 28 -> 14")
    assert found.change == {"model.num_layers": 2}
    assert found.hypothesis == (
        "Removing the last conv block, so that a 6x6 map (not 2x2) reaches the head, "
        "improves test accuracy."
    )
    # A 7x7 map fed to a 9x9 kernel is collapsed too; with one block there is nothing to remove.
    wide = {"model.num_layers": "1", "model.kernel_size": "9", "arch.final_map": "64x3x3",
            "arch.spatial_chain": "7 -> 7 -> 3"}  # fmt: skip
    (note,) = diagnose(step(seeds((HEALTHY_VAL, HEALTHY_TRAIN), params=wide)))
    assert "a 7x7 input to a 9x9 kernel" in note.evidence and not note.proposal


def test_a_model_still_improving_at_the_end_proposes_training_longer():
    val = [0.8 - 0.02 * i for i in range(20)]  # best at the last epoch
    (found,) = diagnose(step(seeds((val, [v - 0.05 for v in val]))))
    assert (found.kind, found.held, found.judged) == ("train_longer", 3, 3)
    assert found.evidence.startswith("holds on 3 seeds of 3: seed 42: best epoch 20 of 20 (val")
    assert found.change == {"train.epochs": 40}
    assert (
        found.hypothesis == "Training 2x longer (40 epochs instead of 20) improves test accuracy."
    )
    # Best in the last quarter but well off it at the end, and rising: not still improving.
    turned = val[:16] + [0.52, 0.6, 0.7, 0.8]
    found = diagnose(step(seeds((turned, [v - 0.05 for v in val]))))
    assert "train_longer" not in kinds(found)


def test_under_fitting_replaces_train_longer_with_the_same_change():
    val = [0.8 - 0.02 * i for i in range(20)]
    (found,) = diagnose(step(seeds((val, [v + 0.05 for v in val]))))  # train above val
    assert (found.kind, found.held, found.proposal) == ("underfitting", 3, True)
    assert "final train_loss 0.47 >= val_loss 0.42, both falling over the last 5" in found.evidence
    assert found.change == {"train.epochs": 40}


def test_a_best_epoch_in_the_first_tenth_proposes_stopping_earlier():
    val = [0.5, 0.4] + [0.401 + 0.0001 * i for i in range(18)]  # best at epoch 2 of 20
    (found,) = diagnose(step(seeds((val, HEALTHY_TRAIN))))
    assert (found.kind, found.held, found.judged) == ("stop_earlier", 3, 3)
    assert "seed 42: best epoch 2 of 20 (val_loss 0.4)" in found.evidence
    assert found.change == {"train.epochs": 3}  # 1.5x the latest best epoch, rounded up
    assert found.expect == {"metric": "seconds", "direction": "better"}
    assert "without losing test accuracy" in found.hypothesis


def test_validation_loss_rising_past_the_seeds_spread_is_overfitting():
    val = [0.8 - 0.06 * i for i in range(8)] + [0.38 + 0.02 * k for k in range(1, 13)]
    (found,) = diagnose(step(seeds((val, HEALTHY_TRAIN))))
    assert (found.kind, found.held, found.judged) == ("overfitting", 3, 3)
    assert "seed 42: val_loss 0.38 at epoch 8 rose to 0.62 (+0.24 > 0.038, 10% of the " in (
        found.evidence
    )
    assert "while train_loss fell 0.655 -> 0.235" in found.evidence
    assert found.change == {"model.dropout": 0.3}
    with_dropout = diagnose(step(seeds((val, HEALTHY_TRAIN), params={"model.dropout": "0.2"})))
    assert with_dropout[0].change == {"train.weight_decay": 0.0001}
    # Seeds whose final losses lie 0.3 apart: a rise of 0.24 is within their spread.
    apart = [([v + 0.3 * i for v in val], HEALTHY_TRAIN) for i in range(3)]
    assert "overfitting" not in kinds(diagnose(step(seeds(apart))))
    wider = [([v + 0.15 * i for v in val], HEALTHY_TRAIN) for i in range(3)]  # sd 0.154
    assert "(+0.24 > 0.154, the seeds' sd)" in diagnose(step(seeds(wider)))[0].evidence
    # One seed: the rise must pass 10% of the minimum (0.038); +0.03 does not, +0.05 does.
    assert diagnose(step([run(1, val[:8] + [0.39, 0.40, 0.41], HEALTHY_TRAIN[:11])])) == []
    (one,) = diagnose(step([run(1, val[:8] + [0.39, 0.41, 0.43], HEALTHY_TRAIN[:11])]))
    assert one.kind == "overfitting" and "+0.05 > 0.038, 10% of the minimum" in one.evidence
    # Training loss no longer falling after the minimum: not overfitting.
    stalled = HEALTHY_TRAIN[:8] + [HEALTHY_TRAIN[7]] * 12
    assert "overfitting" not in kinds(diagnose(step(seeds((val, stalled)))))


SPACE = {
    "train.lr": {"dist": "loguniform", "low": 1e-4, "high": 1e-2},
    "model.filters": {"dist": "quniform", "low": 16, "high": 128, "q": 8, "int": True},
}


def search(best_lr: float, refused: int = 0) -> ExperimentRecord:
    """A search's parent (its space logged as search.space) and trials; the best trial (lowest
    val_loss) has lr best_lr; `refused` samples refused as impossible architectures."""
    parent = RunRecord("p", "search-1", "s", "FINISHED", 0,
                       {"search.objective": "val_loss", "search.space": json.dumps(SPACE)}, {},
                       {"cnnlab.run_kind": "search"})  # fmt: skip
    trials = [parent]
    for i, lr in enumerate([best_lr, 0.001, 0.0003]):
        trial = run(i, [v + 0.05 * i for v in HEALTHY_VAL], HEALTHY_TRAIN, name=f"trial-{i:03d}",
                    params={"train.lr": str(lr), "model.filters": "64"},
                    tags={"mlflow.parentRunId": "p"})  # fmt: skip
        trial.tags.pop("cnnlab.variant")
        trials.append(trial)
    bad = {"mlflow.parentRunId": "p", "cnnlab.fail_reason": "invalid_architecture",
           "cnnlab.error": "final map would be 0x0"}  # fmt: skip
    trials += [
        run(9, [1.0], [1.0], status="FAILED", name=f"r{i}", tags=bad) for i in range(refused)
    ]
    return step(trials)


def test_a_best_learning_rate_at_the_top_of_its_log_range_widens_it():
    (found,) = diagnose(search(0.009))
    assert (found.kind, found.variant, found.proposal) == ("search_edge", None, True)
    assert found.evidence == (
        "best trial trial-000: train.lr = 0.009, at 98% of [0.0001, 0.01] in log space; high -> 0.1"
    )
    assert found.change == {"search.space.train.lr.high": 0.1}
    nested = {"train": {"lr": {"dist": "loguniform", "low": 1e-4, "high": 1e-2}}}  # as TOML reads
    assert diagnose(search(0.009), space=nested)[0].change == found.change
    assert (found.hypothesis, found.expect) == ("", None)
    assert diagnose(search(0.0009)) == []  # mid-range (49%) in log space, though low in linear
    # The space passed in (from config.toml) is the one judged.
    linear = {"train.lr": {"dist": "uniform", "low": 0.0, "high": 0.01}}
    (low,) = diagnose(search(0.0009), space=linear)
    assert low.evidence.endswith("at 9% of [0, 0.01]; low 0 cannot be widened")
    assert (low.proposal, low.change) == (False, {})
    (high,) = diagnose(search(0.0095), space=linear)
    assert high.change == {"search.space.train.lr.high": 0.015}  # half the width further
    # Filters 64 near the low end of [60, 200]: the low is halved (not -10), on the q grid.
    filters = {"model.filters": {"dist": "quniform", "low": 60, "high": 200, "q": 4, "int": True}}
    (few,) = diagnose(search(0.001), space=filters)
    assert few.change == {"search.space.model.filters.low": 28}


def test_a_search_refusing_most_samples_is_a_note():
    record = search(0.001, refused=4)  # 4 refused of 7 drawn
    (found,) = diagnose(record)
    assert (found.kind, found.held, found.judged, found.proposal) == (
        "search_refusals",
        4,
        7,
        False,
    )
    assert found.evidence.startswith("4 of 7 samples (57%) refused as impossible architectures")
    assert "e.g. r0: final map would be 0x0" in found.evidence
    assert diagnose(search(0.001, refused=3)) == []  # 3 of 6: not most


def test_an_inconclusive_hypothesis_is_a_note_with_the_seeds_it_needs():
    needed = "about 8 seeds per arm for 80% power at the observed difference"
    parts = [Part("new vs s: old, test_accuracy: better", "-", "inconclusive (...)", 0.2, needed),
             Part("new vs s: old, seconds: better", "-", "confirmed", 0.001, "")]  # fmt: skip
    judged = Judged("2-step", "New is better and faster.", parts, "inconclusive", 0.2, None)
    record = step(seeds((HEALTHY_VAL, HEALTHY_TRAIN)))
    (found,) = diagnose(record, judged)
    assert (found.kind, found.held, found.judged, found.proposal) == ("undecided", 3, 3, False)
    assert found.evidence == f"new vs s: old, test_accuracy: better: {needed}"
    assert diagnose(record, Judged("2-step", "x", parts[1:], "confirmed", 0.001, None)) == []


def test_diagnoses_are_ranked_and_every_kind_is_known():
    collapsed = {"model.num_layers": "3", "arch.final_map": "64x2x2",
                 "arch.spatial_chain": "28 -> 28 -> 14 -> 12 -> 6 -> 4 -> 2"}  # fmt: skip
    val = [0.8 - 0.02 * i for i in range(20)]
    found = diagnose(step(seeds((val, [v - 0.05 for v in val]), params=collapsed)))
    assert kinds(found) == ["collapsed_map", "train_longer"]
    assert all(d.kind in KINDS for d in found) and found[0].score > found[1].score
