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

from cnnlab._signals import Interrupted, Terminated, deliver

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_DATA = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143
EXIT_ALL_TRIALS_FAILED = 4
EXIT_TRACKING = 5
EXIT_STORAGE = 6
EXIT_DENIED = 7


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + error
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_terminated)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _raise_interrupted)  # not where SIGINT is ignored
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
    except Exception as exc:
        # Only a search can raise it, so the (heavy) search package is loaded when it can apply.
        search = sys.modules.get("cnnlab.search")
        if search and isinstance(exc, search.StorageUnavailable):
            return _fail(str(exc), EXIT_STORAGE)
        raise
    except Terminated:
        return _fail("terminated (SIGTERM)", EXIT_TERMINATED)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)


def _fail(message: str, code: int) -> int:
    print(f"cnnlab: error: {message}", file=sys.stderr)
    return code


def _raise_terminated(signum, frame) -> None:
    deliver(Terminated)  # at once, or as soon as a tracking write in progress is done


def _raise_interrupted(signum, frame) -> None:
    deliver(Interrupted)


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
            f"tracking: {outcome.tracking_uri}"
        )
    if args.json:
        print(json.dumps(_train_json(outcome)))
    return EXIT_OK


def _train_json(outcome) -> dict:
    r = outcome.fit
    return {
        "run_id": outcome.run_id,
        "experiment": outcome.experiment,
        "tracking_uri": outcome.tracking_uri,
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


def cmd_export(args) -> int:
    from cnnlab.export import export_model

    done = export_model(
        args.run_id,
        args.format,
        args.out,
        tracking_uri=args.tracking_uri,
        runs_dir=args.runs_dir,
    )
    if args.json:
        print(json.dumps({**vars(done), "path": str(done.path)}))
    else:
        print(
            f"{done.path}: {done.format}, outputs equal PyTorch's on {done.images_checked} "
            f"images (largest probability difference {done.max_difference:.1e})"
        )
    return EXIT_OK


def cmd_predict(args) -> int:
    from cnnlab.export import predict_files

    found = predict_files(
        args.run_id, args.images, tracking_uri=args.tracking_uri, runs_dir=args.runs_dir
    )
    if args.json:
        print(json.dumps([p.to_dict() for p in found]))
        return EXIT_OK
    for p in found:
        print(f"{p.source}: {p.class_name} ({p.probability:.1%})")
    return EXIT_OK


def cmd_summary(args) -> int:
    from cnnlab.api import summary
    from cnnlab.models import format_summary

    table = summary(_load(args))
    print(json.dumps(table.to_dict()) if args.json else format_summary(table))
    return EXIT_OK


def cmd_data(args) -> int:
    from cnnlab.data import REGISTRY, find_data_dir, verify_all

    if args.list:
        rows = [_dataset_row(spec) for spec in REGISTRY.values()]
        if args.json:
            print(json.dumps(rows))
            return EXIT_OK
        for row in rows:
            shape = "x".join(map(str, row["input_shape"]))
            where = row["found_in"] or "not on disk (downloaded on first use)"
            print(f"{row['name']:<14} {shape:<8} {row['classes']:>3} classes  {row['about']}")
            print(f"{'':<14} {where}")
        return EXIT_OK
    download = not args.no_download
    if not args.verify:
        print(find_data_dir(args.data_dir, download=download, dataset=args.dataset))
        return EXIT_OK
    reports = verify_all(args.data_dir, download=download, dataset=args.dataset)
    if args.json:
        print(json.dumps([{**vars(r), "path": str(r.path)} for r in reports]))
        return EXIT_OK
    for r in reports:
        print(f"ok  {r.name:<26} {r.count:>6} items  sha256 {r.sha256}  {r.path}")
    return EXIT_OK


def _dataset_row(spec) -> dict:
    from cnnlab.data import DataError, find_data_dir

    try:  # only files already on disk: listing never downloads
        found = str(find_data_dir(download=False, dataset=spec.name))
    except DataError:
        found = None
    return {
        "name": spec.name,
        "about": spec.about,
        "input_shape": list(spec.input_shape),
        "classes": spec.num_classes,
        "class_names": list(spec.class_names),
        "files": list(spec.file_names),
        "mirror": spec.mirror,
        "found_in": found,
    }


def cmd_study(args) -> int:
    from cnnlab.api import run_study

    seeds = None if args.seeds is None else _seeds_arg(args.seeds)
    study = run_study(
        args.study_dir,
        quick=args.quick,
        only=args.only,
        seeds=seeds,
        out=args.out,
        tracking_uri=args.tracking_uri,
        data_dir=args.data_dir,
        progress=False,
        echo=None if args.quiet else print,
        jobs=args.jobs,
    )
    report = study.report
    if not args.quiet:
        print(f"report: {report.markdown} and {report.html} ({len(report.figures)} figures)")
    if args.json:
        steps = [vars(r) for r in study.steps]
        uri = study.tracking_uri
        print(json.dumps({"tracking_uri": uri, "report": str(report.html), "steps": steps}))
    return EXIT_OK


def _jobs_arg(parser, what: str, default: int | None = 1) -> None:
    shown = "one per 4 cores" if default is None else default
    parser.add_argument(
        "--jobs",
        type=_positive_int,
        default=default,
        metavar="N",
        help=f"{what}, each in a process with its share of the cores (default: {shown})",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _seeds_arg(text: str) -> int | list[int]:
    """`3` (a count) or `1,2,3` (a list)."""
    from cnnlab.config import ConfigError
    from cnnlab.study import parse_seeds

    try:
        values = [int(t) for t in text.split(",")]
    except ValueError:
        raise ConfigError(
            f"--seeds: expected a count or a comma-separated list of integers, got {text!r}"
        ) from None
    return parse_seeds(values if "," in text else values[0], "--seeds")


def cmd_report(args) -> int:
    from cnnlab.api import report

    written = report(
        args.experiment,
        out=args.out,
        tracking_uri=args.tracking_uri,
        runs_dir=args.runs_dir,
        data_dir=args.data_dir,
    )
    print(f"report: {written.markdown} and {written.html} ({len(written.figures)} figures)")
    return EXIT_OK


def cmd_server(args) -> int:
    from cnnlab.tracking import server_command

    launch = server_command(
        backend_store_uri=args.backend_store_uri,
        artifacts_destination=args.artifacts_destination,
        runs_dir=args.runs_dir,
        host=args.host,
        port=args.port,
        allowed_hosts=args.allowed_hosts,
        auth=args.auth,
        admin_user=args.admin_user,
        admin_password_file=args.admin_password_file,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        insecure=args.insecure,
    )
    for warning in launch.warnings:
        print(f"cnnlab: warning: {warning}", file=sys.stderr)
    users = f", users in {launch.users}" if launch.users else ""
    print(f"MLflow tracking server on {launch.url} ({launch.store}{users})", flush=True)
    os.execve(launch.argv[0], launch.argv, launch.environ())
    return EXIT_ERROR  # not reached: execve replaces this process


def cmd_add_user(args) -> int:
    from cnnlab.config import ConfigError
    from cnnlab.tracking import USER_PASSWORD_ENV, add_user, read_secret, typed_password

    uri = _server_uri(args.tracking_uri)
    prompt = (lambda: typed_password(args.name)) if sys.stdin.isatty() else None
    password = read_secret(USER_PASSWORD_ENV, args.password_file, "--password-file", prompt)
    if password is None:
        raise ConfigError(
            f"add-user {args.name}: no password: set {USER_PASSWORD_ENV}, give --password-file "
            "FILE, or run it on a terminal to type it"
        )
    user = add_user(uri, args.name, password)
    role = "admin" if user.is_admin else "READ on every experiment until granted more"
    print(f"user {user.name} added to {uri} ({role})")
    return EXIT_OK


def cmd_grant(args) -> int:
    from cnnlab.tracking import grant

    uri = _server_uri(args.tracking_uri)
    given = grant(uri, args.name, args.experiment, args.permission)
    print(
        f"user {given.user}: {given.permission} on experiment {given.experiment!r} "
        f"(id {given.experiment_id}) at {uri}"
    )
    return EXIT_OK


def _server_uri(override: str | None) -> str:
    """--tracking-uri, else MLFLOW_TRACKING_URI: a server, where users live."""
    from cnnlab.config import ConfigError, TrackingConfig
    from cnnlab.tracking import resolve_uri

    uri = resolve_uri(TrackingConfig(), override)
    if not uri.startswith(("http://", "https://")):
        raise ConfigError(
            "--tracking-uri: users live on a tracking server: expected http(s)://HOST:PORT "
            f"(or MLFLOW_TRACKING_URI), got {uri}"
        )
    return uri


def cmd_ui(args) -> int:
    from cnnlab.config import TrackingConfig
    from cnnlab.tracking import prepare_store, resolve_uri

    uri = resolve_uri(TrackingConfig(runs_dir=args.runs_dir), args.tracking_uri)
    prepare_store(uri)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri]
    command += ["--host", "127.0.0.1", "--port", str(args.port), "--workers", "1"]
    print(f"MLflow UI on http://127.0.0.1:{args.port} for {uri} (Ctrl-C stops it)", flush=True)
    os.execv(sys.executable, command)
    return EXIT_ERROR  # not reached: execv replaces this process


# ---------------------------------------------------------------- arguments


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cnnlab", description=__doc__.split("\n")[0])
    from cnnlab import __version__

    parser.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    sub = parser.add_subparsers(required=True, metavar="COMMAND", parser_class=_Parser)

    train = sub.add_parser("train", help="train a model from a config, tracked in MLflow")
    _config_args(train)
    train.add_argument("--experiment", help="MLflow experiment (default: tracking.experiment)")
    train.add_argument(
        "--resume",
        metavar="RUN_ID",
        help="continue a run cut short (RUNNING, KILLED, FAILED) in the same MLflow run, from "
        "its last complete epoch, with the config it logged",
    )
    _tracking_args(train)
    _data_dir_arg(train)
    _output_args(train, "no progress bar or result text")
    train.set_defaults(handler=cmd_train)

    tune = sub.add_parser("tune", help="search a config's [search.space]; rerun to resume")
    _config_args(tune)
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
    _jobs_arg(tune, "optuna: trials at once")
    _tracking_args(tune)
    _data_dir_arg(tune)
    _output_args(tune, "no per-trial lines or table")
    tune.set_defaults(handler=cmd_tune)

    export = sub.add_parser("export", help="write a run's model as ONNX or a torch.export file")
    export.add_argument("run_id", help="a run id (or runs:/<id>) that logged an MLflow model")
    export.add_argument("--format", required=True, choices=["onnx", "pt2"])
    export.add_argument("--out", required=True, help="the file to write")
    export.add_argument("--runs-dir", default="cnnlab-runs", help="home of the default store")
    export.add_argument("--json", action="store_true", help="print the result as JSON")
    _tracking_args(export)
    export.set_defaults(handler=cmd_export)

    predict = sub.add_parser("predict", help="classify PNG/JPEG files or an IDX file")
    predict.add_argument("run_id", help="a run id (or runs:/<id>) that logged an MLflow model")
    predict.add_argument("images", nargs="+", help="PNG or JPEG files, or IDX image files")
    predict.add_argument("--runs-dir", default="cnnlab-runs", help="home of the default store")
    predict.add_argument("--json", action="store_true", help="print every class's probability")
    _tracking_args(predict)
    predict.set_defaults(handler=cmd_predict)

    summary = sub.add_parser("summary", help="show the architecture a config builds")
    _config_args(summary)
    summary.add_argument("--json", action="store_true", help="print the summary as JSON")
    summary.set_defaults(handler=cmd_summary)

    data = sub.add_parser("data", help="list the built-in datasets; locate, download, verify one")
    data.add_argument(
        "dataset", nargs="?", default="fashion-mnist", help="a built-in (default fashion-mnist)"
    )
    _data_dir_arg(data)
    data.add_argument("--list", action="store_true", help="the built-in datasets, and where")
    data.add_argument("--verify", action="store_true", help="check every file and print it")
    data.add_argument("--no-download", action="store_true", help="fail instead of downloading")
    data.add_argument("--json", action="store_true", help="with --list or --verify: print JSON")
    data.set_defaults(handler=cmd_data)

    study = sub.add_parser("study", help="run a study folder step by step, then report")
    study.add_argument("study_dir", nargs="?", default="experiments", help="folder of steps")
    study.add_argument("--quick", action="store_true", help="small data and epochs: minutes")
    study.add_argument("--only", metavar="STEP", help="run only this step (e.g. 3-architecture)")
    study.add_argument(
        "--seeds",
        metavar="N|S1,S2,...",
        help="run every variant of every train step once per seed: a count or a list "
        "(replaces the steps' own seeds)",
    )
    study.add_argument("--out", default="report", help="report folder (default: ./report)")
    _jobs_arg(study, "train runs at once", default=None)
    _output_args(study, "print nothing but errors")
    _tracking_args(study)
    _data_dir_arg(study)
    study.set_defaults(handler=cmd_study)

    report = sub.add_parser("report", help="write report.md / report.html from MLflow runs")
    report.add_argument(
        "--experiment", action="append", help="experiment to include (repeatable; default all)"
    )
    report.add_argument("--out", default="report", help="output folder (default: ./report)")
    report.add_argument("--runs-dir", default="cnnlab-runs", help="home of the default store")
    _tracking_args(report)
    _data_dir_arg(report)
    report.set_defaults(handler=cmd_report)

    _server_parser(sub)

    ui = sub.add_parser("ui", help="the MLflow UI on the same store, on 127.0.0.1")
    _tracking_args(ui)
    ui.add_argument("--runs-dir", default="cnnlab-runs", help="home of the default store")
    ui.add_argument("--port", type=int, default=5000)
    ui.set_defaults(handler=cmd_ui)
    return parser


def _server_parser(sub) -> None:
    server = sub.add_parser("server", help="a shared MLflow tracking server (one worker)")
    server.add_argument("--backend-store-uri", help="default: sqlite in --runs-dir")
    server.add_argument("--artifacts-destination", help="default: <runs dir>/artifacts")
    server.add_argument("--runs-dir", default="cnnlab-runs", help="home of the default store")
    server.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    server.add_argument("--port", type=int, default=5000)
    server.add_argument("--allowed-hosts", help="required to bind beyond loopback")
    server.add_argument(
        "--auth", action="store_true", help="users and passwords (required beyond loopback)"
    )
    server.add_argument("--admin-user", default="admin", help="--auth: the admin's name")
    server.add_argument(
        "--admin-password-file",
        metavar="FILE",
        help="--auth, first start: the admin's password (mode 600; or CNNLAB_ADMIN_PASSWORD)",
    )
    server.add_argument("--tls-cert", metavar="FILE", help="serve https: the certificate (PEM)")
    server.add_argument("--tls-key", metavar="FILE", help="serve https: its private key (PEM)")
    server.add_argument(
        "--insecure", action="store_true", help="bind beyond loopback without --auth"
    )
    server.set_defaults(handler=cmd_server)
    actions = server.add_subparsers(metavar="[ACTION]", parser_class=_Parser)
    add = actions.add_parser("add-user", help="as the admin: add a user (READ until granted)")
    add.add_argument("name")
    add.add_argument(
        "--password-file",
        metavar="FILE",
        help="the new user's password (mode 600; or CNNLAB_USER_PASSWORD, or typed)",
    )
    _tracking_args(add)
    add.set_defaults(handler=cmd_add_user)
    give = actions.add_parser("grant", help="as the admin: a user's permission on an experiment")
    give.add_argument("name")
    give.add_argument("experiment", help="created when the server has none by that name")
    give.add_argument("permission", help="READ, USE, EDIT (train, tune), MANAGE, NO_PERMISSIONS")
    _tracking_args(give)
    give.set_defaults(handler=cmd_grant)


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", help="TOML config (default: built-in defaults)")
    p.add_argument(
        "--set",
        action="append",
        metavar="SECTION.KEY=VALUE",
        help="override one config value (repeatable), e.g. --set train.lr=0.01",
    )


def _output_args(p: argparse.ArgumentParser, quiet_help: str) -> None:
    p.add_argument("--json", action="store_true", help="end stdout with one JSON line")
    p.add_argument("--quiet", action="store_true", help=quiet_help)


def _tracking_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tracking-uri", help="MLflow tracking URI (overrides MLFLOW_TRACKING_URI)")


def _data_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="folder with the built-in dataset's files")


if __name__ == "__main__":
    sys.exit(main())
