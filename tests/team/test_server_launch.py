"""What `cnnlab server` would run, checked without running it: no open server by accident,
secrets in the environment and private files only, TLS only with a pair that loads.

Only refusals go through main(): a valid `cnnlab server` replaces its process with MLflow's."""

from __future__ import annotations

import configparser
import stat
from pathlib import Path

import pytest
from team_helpers import password, self_signed

from cnnlab.cli import main
from cnnlab.tracking import server_command

BASE = dict(backend_store_uri=None, artifacts_destination=None, port=5000)


def launch(tmp_path, **options):
    defaults = {**BASE, "host": "127.0.0.1", "allowed_hosts": None}
    return server_command(runs_dir=str(tmp_path / "runs"), **(defaults | options))


def refused(capsys, *args: str) -> str:
    assert main(["server", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_a_public_bind_needs_auth_unless_insecure(tmp_path, capsys, monkeypatch):
    public = ["--host", "0.0.0.0", "--allowed-hosts", "lab.example:5000"]
    err = refused(capsys, *public, "--runs-dir", str(tmp_path / "runs"))
    assert "needs --auth" in err and "--insecure" in err
    opened = launch(tmp_path, host="0.0.0.0", allowed_hosts="lab.example:5000", insecure=True)
    assert "0.0.0.0" in opened.argv and "--app-name" not in opened.argv and opened.env == {}
    monkeypatch.setenv("CNNLAB_ADMIN_PASSWORD", password("admin"))
    guarded = launch(tmp_path, host="0.0.0.0", allowed_hosts="lab.example:5000", auth=True)
    assert guarded.argv[-2:] == ["--app-name", "basic-auth"]
    assert "readable by anyone" in guarded.warnings[0]  # no TLS beyond loopback
    loopback = launch(tmp_path)  # as before: open, on this machine only
    assert "--app-name" not in loopback.argv and loopback.url == "http://127.0.0.1:5000"


def test_auth_keeps_the_admins_password_out_of_argv_and_files(tmp_path, monkeypatch):
    secret = password("admin")
    monkeypatch.setenv("CNNLAB_ADMIN_PASSWORD", secret)
    started = launch(tmp_path, auth=True, admin_user="root-of-team")
    runs = tmp_path / "runs"
    assert not any(secret in arg for arg in started.argv)
    assert started.env["MLFLOW_AUTH_ADMIN_PASSWORD"] == secret
    environ = started.environ()
    assert "CNNLAB_ADMIN_PASSWORD" not in environ and environ["MLFLOW_AUTH_ADMIN_PASSWORD"]
    config_path = started.env["MLFLOW_AUTH_CONFIG_PATH"]
    config = configparser.ConfigParser()
    config.read(config_path)
    assert config["mlflow"]["default_permission"] == "READ"  # a new user reads, no more
    assert config["mlflow"]["database_uri"] == f"sqlite:///{runs / 'auth.db'}"  # beside the store
    assert config["mlflow"]["admin_username"] == "root-of-team"
    for private in (Path(config_path), runs / "auth.db"):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
        assert secret.encode() not in private.read_bytes()
    assert started.users == runs / "auth.db"


def test_the_first_auth_start_needs_the_admins_password(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CNNLAB_ADMIN_PASSWORD", raising=False)
    err = refused(capsys, "--auth", "--runs-dir", str(tmp_path / "runs"))
    assert "CNNLAB_ADMIN_PASSWORD or --admin-password-file" in err
    monkeypatch.setenv("CNNLAB_ADMIN_PASSWORD", "short")
    assert "at least 12 characters" in refused(capsys, "--auth", "--runs-dir", str(tmp_path))


def test_the_admins_password_file_must_be_private(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CNNLAB_ADMIN_PASSWORD", raising=False)
    secret = password("admin")
    file = tmp_path / "admin.pw"
    file.write_text(secret + "\n")
    file.chmod(0o640)
    runs = ["--runs-dir", str(tmp_path / "runs")]
    err = refused(capsys, "--auth", "--admin-password-file", str(file), *runs)
    assert "readable by others (mode 640)" in err and "chmod 600" in err and secret not in err
    file.chmod(0o600)
    started = launch(tmp_path, auth=True, admin_password_file=str(file))
    assert started.env["MLFLOW_AUTH_ADMIN_PASSWORD"] == secret  # the newline dropped
    assert "is for --auth" in refused(capsys, "--admin-password-file", str(file), *runs)


def test_tls_takes_a_certificate_and_key_that_load(tmp_path, capsys):
    cert, key = self_signed(tmp_path)
    assert "needs both" in refused(capsys, "--tls-cert", str(cert))
    assert "cannot load" in refused(capsys, "--tls-cert", str(key), "--tls-key", str(key))
    started = launch(tmp_path, tls_cert=str(cert), tls_key=str(key))
    opts = started.argv[started.argv.index("--uvicorn-opts") + 1]
    assert f"--ssl-certfile {cert}" in opts and f"--ssl-keyfile {key}" in opts
    assert started.url == "https://127.0.0.1:5000"


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_loopback_binds_need_neither_allowed_hosts_nor_auth(tmp_path, host):
    assert "--app-name" not in launch(tmp_path, host=host).argv


def test_the_server_runs_without_mlflows_job_runner_unless_the_user_asks(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", raising=False)
    assert launch(tmp_path).environ()["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    monkeypatch.setenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "true")  # the user's choice stays
    assert launch(tmp_path).environ()["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "true"
