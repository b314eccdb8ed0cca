"""The `cnnlab` command: parse arguments, call the library, map errors to exit codes.

Exit codes (also in the README):
  0 success; 1 unexpected error; 2 bad input (arguments, config, impossible architecture);
  3 bad or missing dataset files; 4 every trial of a search (`cnnlab tune`) failed;
  5 tracking server unreachable (at start within seconds, or for too long at the end), or its
    TLS certificate cannot be verified;
  6 `cnnlab tune --storage`: the Optuna storage cannot be opened (within seconds, no run);
  7 the tracking server refuses this client: wrong or missing credentials (HTTP 401, within
    seconds; `train` finds it before data is loaded) or a missing permission (HTTP 403);
  130 interrupted (Ctrl-C); 143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable

from cnnlab._commands._common import (
    EXIT_ALL_TRIALS_FAILED,
    EXIT_CLUSTER,
    EXIT_DATA,
    EXIT_DENIED,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_STORAGE,
    EXIT_TERMINATED,
    EXIT_TRACKING,
    EXIT_USAGE,
    Parser,
    config_args,
    data_dir_arg,
    jobs_arg,
    output_args,
    ray_arg,
    tracking_args,
)
from cnnlab._signals import Terminated, raise_interrupted, raise_terminated


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, raise_terminated)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, raise_interrupted)  # not where SIGINT is ignored
    return _run(args.handler, args)


def _run(handler: Callable, args: argparse.Namespace) -> int:
    from cnnlab.config import ConfigError
    from cnnlab.data import DataError
    from cnnlab.tracking import TrackingDenied, TrackingUnavailable

    try:
        return handler(args)
    except ConfigError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except DataError as exc:
        return _fail(str(exc), EXIT_DATA)
    except TrackingUnavailable as exc:
        return _fail(str(exc), EXIT_TRACKING)
    except TrackingDenied as exc:
        return _fail(str(exc), EXIT_DENIED)
    except Exception as exc:  # the last handler: a one-line error or a scrubbed traceback
        # Only a search can raise it, so the (heavy) search package is loaded when it can apply.
        search = sys.modules.get("cnnlab.search")
        if search and isinstance(exc, search.StorageUnavailable):
            return _fail(str(exc), EXIT_STORAGE)
        cluster = sys.modules.get("cnnlab.cluster")  # likewise, only with --ray
        if cluster and isinstance(exc, cluster.ClusterUnreachable):
            return _fail(str(exc), EXIT_CLUSTER)
        return _crash(exc)
    except Terminated:
        return _fail("terminated (SIGTERM)", EXIT_TERMINATED)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)


def _fail(message: str, code: int) -> int:
    from cnnlab.tracking import shown

    # A message may quote a store's URI from deep down (a driver's error): never its password.
    print(f"cnnlab: error: {shown(message)}", file=sys.stderr)
    return code


def _crash(exc: Exception) -> int:
    """An unexpected error: its traceback, for a bug report, with every password scrubbed."""
    import traceback

    from cnnlab.tracking import shown

    print(shown("".join(traceback.format_exception(exc))), file=sys.stderr, end="")
    return EXIT_ERROR


# ---------------------------------------------------------------- commands


def _load(args):
    from cnnlab.config import load_config

    overrides = list(args.set or [])
    if getattr(args, "experiment", None):
        overrides.append(f"tracking.experiment={json.dumps(args.experiment)}")
    for key in ("engine", "trials", "timeout", "storage", "study", "register"):  # [search]
        if getattr(args, key, None) is not None:
            overrides.append(f"search.{key}={json.dumps(getattr(args, key))}")
    return load_config(args.config, overrides)


def cmd_train(args) -> int:
    from cnnlab.api import train
    from cnnlab.config import ConfigError
    from cnnlab.tracking import shown
    from cnnlab.training import ProgressBar

    if args.resume and (args.config or args.set or args.experiment):
        raise ConfigError(
            f"--resume {args.resume}: the run goes on with the config it logged; "
            "expected no config file, --set or --experiment with it"
        )
    show_progress = not args.quiet and sys.stderr.isatty()
    outcome = train(
        None if args.resume else _load(args),
        data_dir=args.data_dir,
        tracking_uri=args.tracking_uri,
        progress=False,
        callbacks=[ProgressBar()] if show_progress else [],
        resume=args.resume,
    )
    r = outcome.fit
    if not args.quiet:
        print(
            f"run {outcome.run_id} in experiment {outcome.experiment!r}: "
            f"{r.epochs_run} epochs, {r.images_seen} images, {r.seconds:.1f}s\n"
            f"best epoch {r.best_epoch}: val_loss {r.best_val_loss:.4f}  "
            f"val_accuracy {r.best_val_accuracy:.4f}\n"
            f"test (epoch {r.tested_epoch} weights): test_loss {r.test_loss:.4f}  "
            f"test_accuracy {r.test_accuracy:.4f}\n"
            f"tracking: {shown(str(outcome.tracking_uri))}"
        )
    if args.json:
        print(json.dumps(_train_json(outcome)))
    return EXIT_OK


def _train_json(outcome) -> dict:
    from cnnlab.tracking import shown

    r = outcome.fit
    return {
        "run_id": outcome.run_id,
        "experiment": outcome.experiment,
        "tracking_uri": shown(outcome.tracking_uri) if outcome.tracking_uri else None,
        "val_accuracy": r.best_val_accuracy,
        "val_loss": r.best_val_loss,
        "test_accuracy": r.test_accuracy,
        "test_loss": r.test_loss,
        "epochs": r.epochs_run,
        "best_epoch": r.best_epoch,
        "images_seen": r.images_seen,
        "seconds": round(r.seconds, 3),
        "stop_reason": r.stop_reason,
    }


def cmd_tune(args) -> int:
    from cnnlab.api import tune
    from cnnlab.search import check_space, describe_record, format_table, prepare

    cfg = _load(args)
    if args.check:
        report = check_space(cfg, prepare(cfg))
        print(json.dumps(report.to_dict()) if args.json else report.format())
        return EXIT_OK
    echo = None if args.quiet else (lambda r: print(describe_record(r), file=sys.stderr))
    tuned = tune(
        cfg,
        tracking_uri=args.tracking_uri,
        data_dir=args.data_dir,
        progress=False,
        on_trial=echo,
        jobs=args.jobs,
        ray=args.ray,
    )
    result, registered = tuned.raw, tuned.registered
    n = result.counts
    if not args.quiet:
        print(format_table(result.records, result.objective, result.maximize))
        print(
            f"{n['ok']}/{len(result.records)} trials succeeded ({n['failed']} failed, "
            f"{n['pruned']} pruned); parent run {result.parent_run_id}"
        )
        if result.timed_out:
            print(f"stopped by the timeout; rerun to go on to {result.requested} trials")
        if result.best_config_path:
            print(f"best config: {result.best_config_path}")
        if registered:
            print(f"registered: model {registered.name!r} version {registered.version}")
    if args.json:
        extra = {"registered": vars(registered)} if registered else {}
        print(json.dumps({**result.to_dict(), **extra}))
    if result.best is None and result.records:
        first = min(result.records, key=lambda r: r.number)
        message = f"all {len(result.records)} trials failed; first: trial {first.number} "
        return _fail(message + f"({first.reason}): {first.error}", EXIT_ALL_TRIALS_FAILED)
    return EXIT_OK


def cmd_summary(args) -> int:
    from cnnlab.api import summary
    from cnnlab.models import format_summary

    table = summary(_load(args))
    print(json.dumps(table.to_dict()) if args.json else format_summary(table))
    return EXIT_OK


# ---------------------------------------------------------------- arguments


def _parser() -> argparse.ArgumentParser:
    from cnnlab._commands import data, export, study, team
    from cnnlab._version import __version__

    parser = Parser(prog="cnnlab", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    sub = parser.add_subparsers(required=True, metavar="COMMAND", parser_class=Parser)

    train = sub.add_parser("train", help="train a model from a config, tracked in MLflow")
    config_args(train)
    train.add_argument("--experiment", help="MLflow experiment (default: tracking.experiment)")
    train.add_argument(
        "--resume",
        metavar="RUN_ID",
        help="continue a run cut short (RUNNING, KILLED, FAILED) in the same MLflow run, from "
        "its last complete epoch, with the config it logged",
    )
    tracking_args(train)
    data_dir_arg(train)
    output_args(train, "no progress bar or result text")
    train.set_defaults(handler=cmd_train)

    tune = sub.add_parser("tune", help="search a config's [search.space]; rerun to resume")
    config_args(tune)
    tune.add_argument("--engine", choices=["hyperopt", "optuna"], help="default: search.engine")
    tune.add_argument("--trials", type=int, help="trials in total (default: search.trials)")
    tune.add_argument("--timeout", type=float, metavar="SECONDS", help="start no trial after")
    tune.add_argument("--check", action="store_true", help="sample the space; train nothing")
    tune.add_argument(
        "--storage",
        metavar="URL",
        help="optuna: a study shared by workers: postgresql://..., journal:///file.log",
    )
    tune.add_argument("--study", help="the shared study's name (default: from the config)")
    tune.add_argument(
        "--register", metavar="NAME", help="register the best trial's model under NAME"
    )
    jobs_arg(tune, "optuna: trials at once")
    ray_arg(tune, "each trial")
    tracking_args(tune)
    data_dir_arg(tune)
    output_args(tune, "no per-trial lines or table")
    tune.set_defaults(handler=cmd_tune)

    export.add_parsers(sub)

    summary = sub.add_parser("summary", help="show the architecture a config builds")
    config_args(summary)
    summary.add_argument("--json", action="store_true", help="print the summary as JSON")
    summary.set_defaults(handler=cmd_summary)

    data.add_parser(sub)

    study.add_parsers(sub)
    study.add_advise_parser(sub)
    team.add_parser(sub)
    study.add_ui_parser(sub)

    return parser


if __name__ == "__main__":
    sys.exit(main())
