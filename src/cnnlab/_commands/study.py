"""`cnnlab study`, `cnnlab report`, `cnnlab advise` and `cnnlab ui`: the study, its report, what
to try next, and the runs' UI."""

from __future__ import annotations

import json
import os
import sys

from cnnlab._commands._common import (
    EXIT_ERROR,
    EXIT_OK,
    data_dir_arg,
    jobs_arg,
    output_args,
    ray_arg,
    tracking_args,
)


def cmd_study(args) -> int:
    from cnnlab.api import run_study
    from cnnlab.tracking import shown

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
        until_decided=args.until_decided,
        max_seeds=args.max_seeds,
        ray=args.ray,
    )
    report = study.report
    if not args.quiet:
        print(f"report: {report.markdown} and {report.html} ({len(report.figures)} figures)")
    if args.json:
        steps = [vars(r) for r in study.steps]
        uri = shown(study.tracking_uri)
        print(json.dumps({"tracking_uri": uri, "report": str(report.html), "steps": steps}))
    return EXIT_OK


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


def cmd_advise(args) -> int:
    from cnnlab.api import advise

    if args.study_dir is not None and args.experiment:
        from cnnlab.config import ConfigError

        raise ConfigError("advise: give a study folder or --experiment names, not both")
    advice = advise(
        args.study_dir,
        experiments=args.experiment,
        out=args.out,
        tracking_uri=args.tracking_uri,
        runs_dir=args.runs_dir,
    )
    if args.json:
        print(json.dumps(advice.to_json(), default=str))
        return EXIT_OK
    for d in advice.diagnoses:
        where = d.experiment + (f" [{d.variant}]" if d.variant else "")
        label = "proposal" if d.proposal else "note"
        print(f"{where}: {d.kind.replace('_', ' ')} ({label}; holds on {d.held} of {d.judged})")
        print(f"  rule: {d.rule}\n  evidence: {d.evidence}")
    for p in advice.proposals:
        print(f"next: {p.path} ({p.diagnosis.hypothesis or 'a tune step: the search, widened'})")
    quiet = advice.to_json()["nothing_found"]
    for step in quiet:
        print(f"{step}: nothing to fix found; the next question is yours")
    return EXIT_OK


def cmd_ui(args) -> int:
    from cnnlab.config import TrackingConfig
    from cnnlab.tracking import check_store, light_environ, resolve_uri, shown

    uri = resolve_uri(TrackingConfig(runs_dir=args.runs_dir), args.tracking_uri)
    check_store(uri, to_read=True)  # one line in seconds, not a UI on an empty new store
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri]
    command += ["--host", "127.0.0.1", "--port", str(args.port), "--workers", "1"]
    print(
        f"MLflow UI on http://127.0.0.1:{args.port} for {shown(uri)} (Ctrl-C stops it)",
        flush=True,
    )
    os.execve(sys.executable, command, light_environ())
    return EXIT_ERROR  # not reached: execv replaces this process


def add_parsers(sub) -> None:
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
    study.add_argument(
        "--until-decided",
        action="store_true",
        help="then add rounds of seeds to the variants each open hypothesis compares, until it "
        "is confirmed or refuted or has --max-seeds seeds per arm (looks judged at 0.025/K)",
    )
    study.add_argument(
        "--max-seeds",
        type=int,
        metavar="N",
        help="with --until-decided: seeds per arm at most (default 10)",
    )
    study.add_argument("--out", default="report", help="report folder (default: ./report)")
    jobs_arg(study, "train runs at once", default=None)
    ray_arg(study, "each train run and trial")
    output_args(study, "print nothing but errors")
    tracking_args(study)
    data_dir_arg(study)
    study.set_defaults(handler=cmd_study)

    report = sub.add_parser("report", help="write report.md / report.html from MLflow runs")
    report.add_argument(
        "--experiment", action="append", help="experiment to include (repeatable; default all)"
    )
    report.add_argument("--out", default="report", help="output folder (default: ./report)")
    report.add_argument("--runs-dir", default="cnnlab-runs", help="home of the default store")
    tracking_args(report)
    data_dir_arg(report)
    report.set_defaults(handler=cmd_report)


def add_advise_parser(sub) -> None:
    advise = sub.add_parser(
        "advise", help="what went wrong in each step, and the next step as a ready file"
    )
    advise.add_argument("study_dir", nargs="?", help="a study folder: its steps that have run")
    advise.add_argument(
        "--experiment", action="append", help="experiment to read (repeatable; default all)"
    )
    advise.add_argument("--out", default="advice", help="where proposals go (default ./advice)")
    advise.add_argument("--runs-dir", default="cnnlab-runs", help="home of the default store")
    advise.add_argument("--json", action="store_true", help="each diagnosis as JSON")
    tracking_args(advise)
    advise.set_defaults(handler=cmd_advise)


def add_ui_parser(sub) -> None:
    ui = sub.add_parser("ui", help="the MLflow UI on the same store, on 127.0.0.1")
    tracking_args(ui)
    ui.add_argument("--runs-dir", default="cnnlab-runs", help="home of the default store")
    ui.add_argument("--port", type=int, default=5000)
    ui.set_defaults(handler=cmd_ui)
