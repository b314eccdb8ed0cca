"""Studies: a folder of step files run in order, each variant once per seed, then reported.

results, uri = run_study(Path("experiments"), quick=True)
steps = load_steps(Path("experiments"))   # parsed and checked, nothing run
run_study(Path("experiments"), until_decided=True, max_seeds=8)   # seeds where still open
"""

from cnnlab.study._decide import (
    DEFAULT_MAX_SEEDS,
    Request,
    Sequential,
    check_max_seeds,
    open_requests,
    until_decided,
)
from cnnlab.study._run import Progress, StepResult, run_study
from cnnlab.study._steps import (
    QUICK,
    Step,
    Variant,
    load_step,
    load_steps,
    parse_seeds,
    step_hash,
)
from cnnlab.study._targets import Expectation, Target

__all__ = [
    "DEFAULT_MAX_SEEDS",
    "QUICK",
    "Expectation",
    "Progress",
    "Request",
    "Sequential",
    "Step",
    "StepResult",
    "Target",
    "Variant",
    "check_max_seeds",
    "load_step",
    "load_steps",
    "open_requests",
    "parse_seeds",
    "run_study",
    "step_hash",
    "until_decided",
]
