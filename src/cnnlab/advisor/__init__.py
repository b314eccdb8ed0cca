"""The study advisor: diagnoses read from what MLflow recorded, and the next step as a file.

advice = advise(uri, ["experiments/2-extended-training"], out=Path("advice"))
[d.kind for d in advice.diagnoses]     # ["collapsed_map", ...], ranked
advice.proposals[0].path               # advice/7-remove-a-block.toml: runs with study --only
"""

from cnnlab.advisor._advise import NOTHING, Advice, Proposal, advise
from cnnlab.advisor._diagnose import diagnose
from cnnlab.advisor._diagnosis import KINDS, Diagnosis
from cnnlab.advisor._propose import step_file

__all__ = [
    "KINDS",
    "NOTHING",
    "Advice",
    "Diagnosis",
    "Proposal",
    "advise",
    "diagnose",
    "step_file",
]
