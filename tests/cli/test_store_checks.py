"""Every command that reads or writes a store checks it first, the way `train` always has: a
server or database that does not answer is exit 5 within seconds, a store that is not there is
exit 2 (and reading it creates nothing), and no message holds the store's password."""

from __future__ import annotations

import socket
import time

import pytest

from cnnlab.api import load_run
from cnnlab.cli import main
from cnnlab.config import ConfigError
from cnnlab.tracking import TrackingUnavailable, shown

SECRET = "Planted-Pw-41c7"


@pytest.fixture(autouse=True)
def no_store_from_the_environment(monkeypatch):
    """--runs-dir names the store here: MLFLOW_TRACKING_URI (which mlflow.set_tracking_uri
    sets for the whole process) would win over it."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


RUN = "0123456789abcdef0123456789abcdef"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unreachable_stores() -> list[str]:
    port = closed_port()
    return [
        f"http://alice:{SECRET}@127.0.0.1:{port}/",
        f"postgresql://alice:{SECRET}@127.0.0.1:{port}/runs",
        f"postgresql://alice@127.0.0.1:{port}/runs?password={SECRET}",
    ]


def commands(uri: str, tmp_path) -> list[list[str]]:
    image = str(tmp_path / "shoe.png")  # never read: the store is checked before any work
    return [
        ["report", "--out", str(tmp_path / "report")],
        ["export", RUN, "--format", "onnx", "--out", str(tmp_path / "net.onnx")],
        ["predict", f"runs:/{RUN}/mlflow_model", image],
        ["train", "--set", "train.epochs=1"],
        ["ui", "--port", str(closed_port())],
    ]


@pytest.mark.parametrize("index", range(3), ids=["http", "postgresql", "pg-query"])
def test_an_unreachable_store_is_exit_5_in_seconds_without_its_password(
    index, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("CNNLAB_DATA_DIR", str(tmp_path / "no-data"))  # data is never reached
    uri = unreachable_stores()[index]
    for args in commands(uri, tmp_path):
        started = time.monotonic()
        code = main([*args, "--tracking-uri", uri])
        seconds = time.monotonic() - started
        out, err = capsys.readouterr()
        assert code == 5, (args, err)
        assert err.count("\n") == 1 and "does not answer" in err, err
        assert "Traceback" not in err and SECRET not in out + err
        assert seconds < 15, (args, seconds)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no report, no export


def test_load_run_on_an_unreachable_server_raises_in_seconds_without_its_password():
    started = time.monotonic()
    with pytest.raises(TrackingUnavailable) as caught:
        load_run(RUN, tracking_uri=unreachable_stores()[0])
    assert time.monotonic() - started < 15 and SECRET not in str(caught.value)


def test_reading_a_store_that_is_not_there_is_exit_2_and_creates_nothing(tmp_path, capsys):
    runs = tmp_path / "typo-runs"
    for args in (
        ["report", "--out", str(tmp_path / "report")],
        ["export", RUN, "--format", "pt2", "--out", str(tmp_path / "net.pt2")],
        ["predict", RUN, str(tmp_path / "shoe.png")],
        ["ui", "--port", str(closed_port())],
    ):
        assert main([*args, "--runs-dir", str(runs)]) == 2, args
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"expected an MLflow store at {runs}" in err, err
    with pytest.raises(ConfigError, match="got no such file"):
        load_run(RUN, runs_dir=str(runs))
    assert list(tmp_path.iterdir()) == []  # no runs folder, no empty mlflow.db


def test_reading_a_database_without_a_store_is_exit_2_and_creates_no_tables(
    postgres_url, tmp_path, capsys
):
    import sqlalchemy

    admin = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text("CREATE DATABASE empty_store"))
    empty = postgres_url.rsplit("/", 1)[0] + "/empty_store"
    try:
        assert main(["report", "--out", str(tmp_path / "r"), "--tracking-uri", empty]) == 2
        assert "got a database without one" in capsys.readouterr().err
        engine = sqlalchemy.create_engine(empty)
        with engine.connect() as conn:
            assert sqlalchemy.inspect(conn).get_table_names() == []
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text("DROP DATABASE empty_store WITH (FORCE)"))
        admin.dispose()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://ana:pw@lab:5000/mlflow", "https://ana:***@lab:5000/mlflow"),
        ("postgresql+psycopg://u:s3cret@db:5432/r", "postgresql+psycopg://u:***@db:5432/r"),
        ("run 'http://u:p/w@x@host:9/' failed", "run 'http://u:***@host:9/' failed"),
        ("http://ana@lab:5000/", "http://ana@lab:5000/"),
        (
            "postgresql://u@db/runs?sslmode=require&password=zz",
            "postgresql://u@db/runs?sslmode=require&password=***",
        ),
        ("sqlite:///runs/mlflow.db", "sqlite:///runs/mlflow.db"),
        ("http://lab:5000/", "http://lab:5000/"),
    ],
)
def test_shown_scrubs_every_credential_in_a_text(text, expected):
    assert shown(text) == expected
