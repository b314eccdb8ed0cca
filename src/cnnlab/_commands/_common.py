"""What the command modules share: the one-line parser, exit codes and common arguments."""

from __future__ import annotations

import argparse

# Every exit code of the command line (the README's table): one home, read by cli and commands.
EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2  # done; an unexpected error; bad input (ConfigError)
EXIT_DATA = 3  # data missing or failing verification (DataError)
EXIT_ALL_TRIALS_FAILED = 4  # a search ended with no trial that trained
EXIT_TRACKING = 5  # the tracking server did not answer
EXIT_STORAGE = 6  # a shared search's storage did not answer
EXIT_DENIED = 7  # the tracking server refused the credentials
EXIT_CLUSTER = 8  # no Ray cluster answered at --ray ADDRESS
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143  # Ctrl-C; SIGTERM (128 + the signal)


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + error
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", help="TOML config (default: built-in defaults)")
    p.add_argument(
        "--set",
        action="append",
        metavar="SECTION.KEY=VALUE",
        help="override one config value (repeatable), e.g. --set train.lr=0.01",
    )


def output_args(p: argparse.ArgumentParser, quiet_help: str) -> None:
    p.add_argument("--json", action="store_true", help="end stdout with one JSON line")
    p.add_argument("--quiet", action="store_true", help=quiet_help)


def tracking_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tracking-uri", help="MLflow tracking URI (overrides MLFLOW_TRACKING_URI)")


def data_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="folder with the built-in dataset's files")


def jobs_arg(parser, what: str, default: int | None = 1) -> None:
    shown = "one per 4 cores" if default is None else default
    parser.add_argument(
        "--jobs",
        type=_positive_int,
        default=default,
        metavar="N",
        help=f"{what}, each in a process with its share of the cores (default: {shown})",
    )


def ray_arg(parser, what: str) -> None:
    parser.add_argument(
        "--ray",
        metavar="ADDRESS",
        help=f"run {what} as a Ray task on this cluster: its head's HOST:PORT, or 'local' "
        'for one started here (needs pip install "cnnlab[ray]")',
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value
