"""Studies: a folder of step files run in order, each variant once per seed, then reported.

results, uri = run_study(Path("experiments"), quick=True)
steps = load_steps(Path("experiments"))   # parsed and checked, nothing run
"""

from cnnlab.study._run import Progress, StepResult, run_study
from cnnlab.study._steps import (
    QUICK,
    Expectation,
    Step,
    Target,
    Variant,
    load_step,
    load_steps,
    parse_seeds,
    step_hash,
)

__all__ = [
    "QUICK",
    "Expectation",
    "Progress",
    "Step",
    "StepResult",
    "Target",
    "Variant",
    "load_step",
    "load_steps",
    "parse_seeds",
    "run_study",
    "step_hash",
]
