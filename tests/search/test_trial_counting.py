"""One rule says whether a finished sample is one of a search's trials."""

from cnnlab.search import FAIL_REASONS, INVALID_ARCHITECTURE, TrialRecord, counts_as_trial


def test_refused_samples_count_only_with_count_invalid():
    refused = TrialRecord(0, {}, "failed", reason=INVALID_ARCHITECTURE)
    assert counts_as_trial(refused, count_invalid=True)
    assert not counts_as_trial(refused, count_invalid=False)


def test_every_other_outcome_counts():
    others = [r for r in FAIL_REASONS if r != INVALID_ARCHITECTURE]
    records = [TrialRecord(0, {}, "failed", reason=r) for r in others]
    records += [TrialRecord(1, {}, "ok", value=0.3), TrialRecord(2, {}, "pruned", reason="epoch 1")]
    assert all(counts_as_trial(r, count_invalid=False) for r in records)
