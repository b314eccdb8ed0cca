"""A shared study's database password stays off the command line: `--storage` takes a PostgreSQL
URL without it, and libpq finds it in PGPASSWORD or a password file (~/.pgpass, PGPASSFILE).
A missing or wrong password is exit 6 in one line that never shows a password."""

from __future__ import annotations

import secrets

import pytest

from cnnlab.cli import main
from cnnlab.config import load_config, override_text, to_toml
from cnnlab.search._shared import open_storage

pytestmark = pytest.mark.slow


@pytest.fixture
def no_password(monkeypatch, tmp_path):
    """No password anywhere libpq looks."""
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))
    monkeypatch.setenv("PGSERVICEFILE", str(tmp_path / "no-service"))


def studies_written(url: str, postgres_url: str) -> tuple[str, list[str]]:
    """A study created through `url` (no password in it), and the studies the server's admin
    then finds in database `team`, written by team_worker: the study landed where url points."""
    import optuna
    import sqlalchemy

    assert ":" not in url.split("//", 1)[1].split("@", 1)[0]  # no password in the URL itself
    name = f"secret-{secrets.token_hex(4)}"
    optuna.create_study(storage=open_storage(url, heartbeat=10), study_name=name)
    admin = sqlalchemy.create_engine(postgres_url.rsplit("/", 1)[0] + "/team")
    try:
        with admin.connect() as conn:
            names = conn.execute(sqlalchemy.text("SELECT study_name FROM studies")).scalars()
            names = list(names)
            owner = "SELECT tableowner FROM pg_tables WHERE tablename = 'studies'"
            assert conn.execute(sqlalchemy.text(owner)).scalar() == "team_worker"
    finally:
        admin.dispose()
    return name, names


def test_the_password_comes_from_pgpassword(pg_worker, postgres_url, no_password, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", pg_worker.password)
    name, found = studies_written(pg_worker.url, postgres_url)
    assert name in found


def test_the_password_comes_from_a_pgpass_file(
    pg_worker, postgres_url, no_password, monkeypatch, tmp_path
):
    host_port = pg_worker.url.split("@")[1].split("/")[0]
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"{host_port}:team:team_worker:{pg_worker.password}\n")
    pgpass.chmod(0o600)  # libpq ignores a password file others can read
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    name, found = studies_written(pg_worker.url, postgres_url)
    assert name in found


@pytest.mark.parametrize("given", ["none", "wrong env", "wrong in url"])
def test_a_missing_or_wrong_password_is_exit_6_and_never_printed(
    given, pg_worker, no_password, monkeypatch, tmp_path, capsys
):
    wrong = "not-" + pg_worker.password
    url = pg_worker.url
    if given == "wrong env":
        monkeypatch.setenv("PGPASSWORD", wrong)
    if given == "wrong in url":
        url = url.replace("team_worker@", f"team_worker:{wrong}@")
    config = tmp_path / "search.toml"
    space = {"model.filters": {"dist": "choice", "options": [4, 8]}}
    cfg = load_config(None, ["search.engine=optuna", override_text("search.space", space)])
    config.write_text(to_toml(cfg))
    uri = f"sqlite:///{tmp_path}/runs/mlflow.db"
    code = main(["tune", str(config), "--storage", url, "--tracking-uri", uri])
    out, err = capsys.readouterr()
    assert code == 6 and err.count("\n") == 1, err
    assert "password" in err and "team_worker" in err
    if given == "none":
        assert "PGPASSWORD, ~/.pgpass" in err  # where libpq looked
    for secret in (wrong, pg_worker.password):
        assert secret not in out + err
    assert not (tmp_path / "runs").exists()  # no run, no store


def test_workers_opening_an_empty_database_at_once_all_get_the_storage(postgres_url):
    """Workers of one search start together on a database Optuna has not seen: all create its
    tables at the same moment, and every one gets a working storage."""
    import threading

    import optuna
    import sqlalchemy

    name = f"race_{secrets.token_hex(4)}"
    admin = sqlalchemy.create_engine(
        postgres_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    url = postgres_url.rsplit("/", 1)[0] + f"/{name}"
    start, opened, failed = threading.Barrier(6), [], []

    def open_one():
        start.wait()
        try:
            opened.append(open_storage(url, heartbeat=10))
        except Exception as exc:  # noqa: BLE001 - the test reports what any opener raised
            failed.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not failed and len(opened) == 6
    study = optuna.create_study(storage=opened[-1], study_name="after-the-race")
    assert study.study_name in optuna.get_all_study_names(storage=opened[0])
