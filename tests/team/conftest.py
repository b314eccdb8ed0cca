"""Team fixtures: a real `cnnlab server --auth` over TLS on 127.0.0.1, and a PostgreSQL role
that must give a password; each started and stopped here. Plain helpers: team_helpers.py."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from team_helpers import TeamServer, free_port, password, self_signed


@pytest.fixture(scope="module")
def team_server(tmp_path_factory, empty_store):
    """A real auth-enabled https server on 127.0.0.1 over a fresh runs dir (its run store made
    already, as after a first start: the users and the admin are the server's to make)."""
    home = tmp_path_factory.mktemp("team-server")
    empty_store(home / "runs" / "mlflow.db")
    cert, key = self_signed(home)
    port = free_port()
    server = TeamServer(home, f"https://127.0.0.1:{port}", cert, password("admin"))
    server.start(port, key)
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class PgWorker:
    url: str  # no password in it
    password: str


@pytest.fixture(scope="session")
def pg_worker(postgres_url):
    """A role of the test PostgreSQL that must give its password (scram), owning database
    `team`; only this role's logins change (one pg_hba.conf line, removed after)."""
    import sqlalchemy

    secret = password("pg")
    admin = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f"CREATE ROLE team_worker LOGIN PASSWORD '{secret}'"))
        conn.execute(sqlalchemy.text("CREATE DATABASE team OWNER team_worker"))
        hba = Path(conn.execute(sqlalchemy.text("SHOW hba_file")).scalar())
    original = hba.read_text()
    hba.write_text(f"host all team_worker 127.0.0.1/32 scram-sha-256\n{original}")
    _reload(admin)
    host_port = postgres_url.split("@", 1)[1].split("/", 1)[0]
    try:
        yield PgWorker(f"postgresql://team_worker@{host_port}/team", secret)
    finally:
        hba.write_text(original)
        _reload(admin)
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text("DROP DATABASE IF EXISTS team WITH (FORCE)"))
            conn.execute(sqlalchemy.text("DROP ROLE IF EXISTS team_worker"))
        admin.dispose()


def _reload(engine) -> None:
    import sqlalchemy

    with engine.connect() as conn:
        conn.execute(sqlalchemy.text("SELECT pg_reload_conf()"))
    time.sleep(0.3)  # the postmaster rereads pg_hba.conf on the signal
