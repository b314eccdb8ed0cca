"""Search: a space as plain data, one objective, Hyperopt and Optuna engines, MLflow layout.

    cfg = load_config("configs/study-search.toml", ["search.trials=10"])
    result = run_search(cfg)                 # resumes when rerun after a crash or Ctrl-C
    print(format_table(result.records, result.objective, result.maximize))
    report = check_space(cfg, prepare(cfg))  # `cnnlab tune --check`: sampled, never trained

The engines observe training through callbacks only; the loop never imports them.
"""

from cnnlab.search._check import SpaceReport, check_space
from cnnlab.search._entry import run_search
from cnnlab.search._objective import trial_config
from cnnlab.search._parallel import spreads_over
from cnnlab.search._records import (
    FAIL_REASONS,
    INVALID_ARCHITECTURE,
    TrialRecord,
    counts_as_trial,
    describe_record,
    format_table,
)
from cnnlab.search._search import SearchResult, prepare
from cnnlab.search._shared import StorageUnavailable
from cnnlab.search._space import (
    DISTRIBUTIONS,
    Dimension,
    Space,
    dimensions_from_dict,
    flat_keys,
    parse_space,
)

__all__ = [
    "DISTRIBUTIONS",
    "FAIL_REASONS",
    "INVALID_ARCHITECTURE",
    "Dimension",
    "SearchResult",
    "Space",
    "SpaceReport",
    "StorageUnavailable",
    "TrialRecord",
    "check_space",
    "counts_as_trial",
    "describe_record",
    "dimensions_from_dict",
    "flat_keys",
    "format_table",
    "parse_space",
    "prepare",
    "run_search",
    "spreads_over",
    "trial_config",
]
