"""Search: a space as plain data, one objective, Hyperopt and Optuna engines, MLflow layout.

    cfg = load_config("configs/study-search.toml", ["search.trials=10"])
    result = run_search(cfg)                 # resumes when rerun after a crash or Ctrl-C
    print(format_table(result.records, result.objective, result.maximize))
    report = check_space(cfg, prepare(cfg))  # `cnnlab tune --check`: sampled, never trained

The engines observe training through callbacks only; the loop never imports them.
"""

from cnnlab.search._check import SpaceReport, check_space, require_some_valid
from cnnlab.search._hyperopt import HyperoptEngine, hyperopt_space
from cnnlab.search._layout import SEARCH_ID_TAG, SearchLayout
from cnnlab.search._objective import Objective, objective_value, trial_config
from cnnlab.search._optuna import OptunaEngine, PruningCallback, optuna_distributions
from cnnlab.search._records import (
    FAIL_REASONS,
    TrialRecord,
    best_of,
    counts,
    describe_record,
    format_table,
)
from cnnlab.search._search import SearchResult, prepare, run_search, search_id, state_path
from cnnlab.search._shared import SharedStudy, StorageUnavailable, open_storage
from cnnlab.search._space import (
    DISTRIBUTIONS,
    Dimension,
    Space,
    overrides,
    parse_space,
    sample,
    space_to_dict,
)

__all__ = [
    "DISTRIBUTIONS",
    "FAIL_REASONS",
    "SEARCH_ID_TAG",
    "Dimension",
    "HyperoptEngine",
    "Objective",
    "OptunaEngine",
    "PruningCallback",
    "SearchLayout",
    "SearchResult",
    "Space",
    "SpaceReport",
    "SharedStudy",
    "StorageUnavailable",
    "TrialRecord",
    "best_of",
    "check_space",
    "counts",
    "describe_record",
    "format_table",
    "hyperopt_space",
    "objective_value",
    "open_storage",
    "optuna_distributions",
    "overrides",
    "parse_space",
    "prepare",
    "require_some_valid",
    "run_search",
    "sample",
    "search_id",
    "space_to_dict",
    "state_path",
    "trial_config",
]
