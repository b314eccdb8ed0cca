"""The advisor on a real study of small, deliberately broken steps: each diagnosis fires where
it should, the proposed step files run through `cnnlab study --only` and get a verdict, and the
CLI and the report carry the advice."""

import json
import shutil
from pathlib import Path

import pytest

from cnnlab.api import advise, run_study
from cnnlab.cli import main

# A real study of five steps (about 80 s on a 2-core AMD EPYC) under every test of the module.
pytestmark = pytest.mark.slow

# Small runs: 600 training and 1,200 validation images, three epochs (the fewest the curve
# rules read); no MLflow model, which the advisor never reads.
SMALL = """
[data]
train_limit = 600
val_fraction = 0.02

[model]
filters = 8
hidden_units = [32]

[train]
epochs = 3
lr = 3e-3
eval_batch_size = 1000

[tracking]
log_model = false
"""
STEPS = {
    # Adam at a learning rate of 1.0: the loss explodes.
    "1-diverge": "[step]\nseeds = 2\n[train]\nlr = 1.0\n",
    # Four epochs of 5 steps: the run stops while validation still improves (one epoch would
    # leave a single validation point, no curve to read).
    "2-short": "[step]\nseeds = 2\n[train]\nepochs = 4\nsteps_per_epoch = 5\n",
    # 300 training images seen four times an epoch by a wide head: training loss nears 0 and
    # validation loss ends far (+0.35) above its minimum, several times the rule's bar (0.08).
    "3-overfit": (
        "[step]\nseeds = 2\n[data]\ntrain_limit = 300\n[model]\nhidden_units = [128]\n"
        "[train]\nepochs = 10\nsteps_per_epoch = 20\n"
    ),
    # Four padded conv blocks: 28 -> 14 -> 7 -> 3 -> 1, a 1x1 map.
    "4-collapsed": '[step]\nseeds = 2\n[model]\nnum_layers = 4\npadding = 1\nhead_pool = "avg"\n',
    # A search whose learning rates (1e-3 to 4e-3 in steps of 1e-3) stop short of the best:
    # with this seed the best trial has the top one, 4e-3.
    "5-search": (
        '[step]\nkind = "tune"\n[train]\nlr = 1e-3\n'
        '[search]\nengine = "hyperopt"\ntrials = 4\nseed = 3\n'
        '[search.space]\n"train.lr" = { dist = "quniform", low = 1e-3, high = 4e-3, q = 1e-3 }\n'
    ),
}


def _merge(step: str) -> str:
    """The step's own tables over SMALL's (a key set twice would be invalid TOML)."""
    import tomllib

    from cnnlab.config import toml_value

    raw = tomllib.loads(SMALL)
    for section, table in tomllib.loads(step).items():
        raw.setdefault(section, {}).update(table)
    lines = []
    for section, table in raw.items():
        lines.append(f"[{section}]")
        for key, value in table.items():
            if isinstance(value, dict):  # [search.space]
                continue
            lines.append(f"{key} = {toml_value(value)}")
        lines.append("")
    space = raw.get("search", {}).get("space")
    if space:
        lines.append("[search.space]")
        lines += [f'"{k}" = {toml_value(v)}' for k, v in space.items()]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def broken(tmp_path_factory, fmnist, empty_store):
    root = tmp_path_factory.mktemp("advise")
    folder = root / "broken"
    folder.mkdir()
    for name, text in STEPS.items():
        (folder / f"{name}.toml").write_text(_merge(text))
    uri = empty_store(root / "runs.db")
    run_study(folder, tracking_uri=uri, out=root / "report", progress=False)
    return folder, uri, root


def _kinds(advice, step: str) -> set[str]:
    return {d.kind for d in advice.diagnoses if d.experiment == f"broken/{step}" and d.proposal}


def test_each_broken_step_fires_its_diagnosis(broken):
    folder, uri, root = broken
    advice = advise(folder, tracking_uri=uri, out=root / "advice")
    assert "divergence" in _kinds(advice, "1-diverge")
    assert _kinds(advice, "2-short") & {"train_longer", "underfitting"}
    assert "overfitting" in _kinds(advice, "3-overfit")
    assert "collapsed_map" in _kinds(advice, "4-collapsed")
    assert "search_edge" in _kinds(advice, "5-search")
    # Each diagnosis shows the numbers that fired it.
    collapsed = next(d for d in advice.diagnoses if d.kind == "collapsed_map")
    assert "1x1" in collapsed.evidence and collapsed.change == {"model.num_layers": 3}
    edge = next(d for d in advice.diagnoses if d.kind == "search_edge")
    assert "train.lr" in edge.evidence


def test_each_proposed_step_runs_with_study_only_and_gets_a_verdict(broken):
    folder, uri, root = broken
    advice = advise(folder, tracking_uri=uri, out=root / "advice2")
    collapsed = next(p for p in advice.proposals if p.diagnosis.kind == "collapsed_map")
    # Numbered after the study's last step (5), in rank order (divergence comes first).
    assert collapsed.path.name == f"{collapsed.step}.toml" and int(collapsed.step[0]) > 5
    text = collapsed.path.read_text()
    assert 'reference = "4-collapsed:' in text and "num_layers = 3" in text
    assert "[tracking]" not in text
    trains = [p for p in advice.proposals if p.diagnosis.kind != "search_edge"]
    assert {p.diagnosis.kind for p in trains} >= {"divergence", "collapsed_map", "overfitting"}
    for proposal in trains:
        shutil.copy(proposal.path, folder / proposal.path.name)
    try:
        for proposal in trains:
            out = root / f"report-{proposal.step}"
            rc = main(
                ["study", str(folder), "--only", proposal.step, "--tracking-uri", uri,
                 "--out", str(out), "--quiet"]
            )  # fmt: skip
            assert rc == 0, proposal.step
            md = (out / "report.md").read_text()
            row = next(line for line in md.splitlines() if line.startswith(f"| {proposal.step} |"))
            assert proposal.diagnosis.hypothesis in row
            assert any(v in row for v in ("| confirmed |", "| refuted |", "| inconclusive |")), row
    finally:
        for proposal in trains:
            (folder / proposal.path.name).unlink()


def test_advise_json_gives_rule_evidence_and_file(broken, capsys):
    folder, uri, root = broken
    out = root / "advice-json"
    assert main(["advise", str(folder), "--tracking-uri", uri, "--out", str(out), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    kinds = {d["kind"] for d in found["diagnoses"]}
    assert {"divergence", "collapsed_map", "search_edge"} <= kinds
    for d in found["diagnoses"]:
        assert d["rule"] and d["evidence"]
        if d["file"]:
            assert Path(d["file"]).is_file()


def test_the_study_report_says_what_to_try_next(broken):
    folder, uri, root = broken
    md = (root / "report" / "report.md").read_text()
    html = (root / "report" / "report.html").read_text()
    assert "## What to try next" in md and "What to try next" in html
    assert "collapsed map" in md and "divergence" in md
    # A search's proposal has no hypothesis: its row says what the new search changes.
    edge = next(ln for ln in md.splitlines() if ln.startswith("| 5-search |") and "edge" in ln)
    assert "`: a new search: search.space.train.lr." in edge


def test_advise_on_a_folder_that_never_ran_is_one_line_exit_2(tmp_path, capsys, empty_store):
    folder = tmp_path / "never"
    folder.mkdir()
    (folder / "1-x.toml").write_text(SMALL)
    uri = empty_store(tmp_path / "runs.db")  # an empty store with its tables
    capsys.readouterr()  # MLflow's lines as it created them
    assert main(["advise", str(folder), "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no step of this study has run" in err[0]
