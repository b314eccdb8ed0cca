"""What a team server's password check costs per request: `cnnlab server --auth` as it runs
(a checked password trusted for tracking.CREDENTIAL_CACHE_SECONDS) against the same server with
MLflow's default, which hashes the password again on every request.

    python benchmarks/auth_requests.py --requests 100 --rounds 3

Each round starts both servers (http on 127.0.0.1, a fresh runs dir each) and times
`--requests` authenticated searches of experiments, one after the other, as a report's or a
run's client makes them. Prints one JSON line: the median milliseconds per request of each
way and their ratio.
"""

from __future__ import annotations

import argparse
import base64
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from _common import emit, median, note

from cnnlab.tracking import ADMIN_PASSWORD_ENV, CREDENTIAL_CACHE_SECONDS, server_command

PASSWORD = "benchmark-admin-password"
SEARCH = "/api/2.0/mlflow/experiments/search?max_results=10"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(runs_dir: Path, cached: bool) -> tuple[subprocess.Popen, str]:
    launch = server_command(
        backend_store_uri=None,
        artifacts_destination=None,
        runs_dir=str(runs_dir),
        host="127.0.0.1",
        port=free_port(),
        allowed_hosts=None,
        auth=True,
    )
    if not cached:  # MLflow's default: no credential cache
        config = Path(launch.env["MLFLOW_AUTH_CONFIG_PATH"])
        line = f"auth_cache_ttl_seconds = {CREDENTIAL_CACHE_SECONDS}"
        text = config.read_text()
        if line not in text:  # else both ways would time the same server
            raise RuntimeError(f"{config} has no line {line!r} to turn the cache off")
        config.write_text(text.replace(line, "auth_cache_ttl_seconds = 0"))
    proc = subprocess.Popen(
        launch.argv,
        env=launch.environ(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(launch.url + "/health", timeout=2):
                return proc, launch.url
        except OSError:
            time.sleep(0.2)
    stop(proc)
    raise RuntimeError("the server did not come up")


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def per_request_ms(url: str, requests: int) -> float:
    token = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    request = urllib.request.Request(url + SEARCH, headers={"Authorization": f"Basic {token}"})
    with urllib.request.urlopen(request, timeout=30) as answer:  # the first one: not timed
        assert answer.status == 200
    started = time.perf_counter()
    for _ in range(requests):
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()
    return 1000 * (time.perf_counter() - started) / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ[ADMIN_PASSWORD_ENV] = PASSWORD  # each fresh runs dir's first start makes the admin
    runs: dict[str, list[float]] = {"cached": [], "uncached": []}
    for round_ in range(args.rounds):
        for way in runs:
            with tempfile.TemporaryDirectory() as tmp:
                proc, url = start(Path(tmp) / "runs", cached=way == "cached")
                try:
                    runs[way].append(per_request_ms(url, args.requests))
                finally:
                    stop(proc)
            note(f"round {round_ + 1}: {way} {runs[way][-1]:.1f} ms per request")
    medians = {way: round(median(ms), 2) for way, ms in runs.items()}
    emit(
        {
            "benchmark": "auth_requests",
            "requests": args.requests,
            "rounds": args.rounds,
            "median_ms_per_request": medians,
            "uncached_over_cached": round(median(runs["uncached"]) / median(runs["cached"]), 2),
            "all_runs": {way: [round(ms, 2) for ms in values] for way, values in runs.items()},
            "cache_seconds": CREDENTIAL_CACHE_SECONDS,
        }
    )


if __name__ == "__main__":
    main()
