"""A team server that lets in only the team: a real `cnnlab server --auth` over TLS on 127.0.0.1.

Anonymous and wrong-password clients get exit 7 in seconds, before any data; a reader lists but
cannot write; a writer the admin made and granted EDIT trains and tunes (a shared PostgreSQL
study whose password comes from PGPASSWORD); a client without the server's certificate is
refused; and no password shows up in any output, log, param, tag, artifact or report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image
from team_helpers import password

from cnnlab.cli import main
from cnnlab.config import load_config, override_text, to_toml
from cnnlab.tracking import Store, TrackingDenied, add_user, grant

pytestmark = pytest.mark.slow

READER, WRITER, CAROL = password("reader"), password("writer"), password("carol")
TINY = [
    "model.filters=8",
    "model.hidden_units=[32]",
    "train.epochs=1",
    "train.eval_batch_size=500",
    "data.train_limit=1000",
    "train.fused_stem=false",  # no timing of the native kernel against PyTorch's first
    'tracking.experiment="team"',
]


@pytest.fixture(scope="module")
def team(team_server):
    """Users reader and writer, made by the admin; writer may EDIT experiment `team`."""
    with as_user("admin", team_server.admin_password, team_server.cert):
        add_user(team_server.uri, "reader", READER)
        add_user(team_server.uri, "writer", WRITER)
        grant(team_server.uri, "writer", "team", "EDIT")
    return team_server


class as_user:
    """MLflow's credentials and the server's certificate in this process's environment."""

    def __init__(self, user: str | None, secret: str | None, cert: Path | None):
        self.values = {
            "MLFLOW_TRACKING_USERNAME": user,
            "MLFLOW_TRACKING_PASSWORD": secret,
            "MLFLOW_TRACKING_SERVER_CERT_PATH": str(cert) if cert else None,
        }

    def __enter__(self):
        self.saved = {key: os.environ.get(key) for key in self.values}
        _set(self.values)

    def __exit__(self, *exc) -> None:
        _set(self.saved)


def _set(values: dict[str, str | None]) -> None:
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def cnnlab(*args: str, env: dict[str, str], cwd: Path, timeout: int = 300):
    return subprocess.run(
        [sys.executable, "-m", "cnnlab.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=cwd,
        timeout=timeout,
    )


@dataclass(frozen=True)
class Done:
    """What a command of a module fixture left: its id, what it printed, its working folder."""

    id: str
    printed: list[str]
    folder: Path


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_clients_without_valid_credentials_get_exit_7_before_any_data(
    team, capsys, monkeypatch, tmp_path
):
    monkeypatch.setenv("CNNLAB_DATA_DIR", str(tmp_path / "no-data"))
    for user, secret, says in [
        (None, None, "needs credentials (HTTP 401)"),
        ("writer", "not-" + WRITER, "refused the password of user 'writer' (HTTP 401)"),
    ]:
        with as_user(user, secret, team.cert):
            started = time.monotonic()
            code, _, err = run_main(capsys, "train", "--tracking-uri", team.uri)
        assert code == 7 and says in one_line(err)
        assert time.monotonic() - started < 10


def test_admin_adds_a_user_and_grants_a_permission(team, capsys, tmp_path):
    secret_file = tmp_path / "carol.pw"
    secret_file.write_text(CAROL + "\n")
    secret_file.chmod(0o600)
    uri = ["--tracking-uri", team.uri]
    with as_user("admin", team.admin_password, team.cert):
        add = ["server", "add-user", "carol", "--password-file", str(secret_file), *uri]
        code, out, _ = run_main(capsys, *add)
        assert code == 0 and "user carol added" in out
        code, out, _ = run_main(capsys, "server", "grant", "carol", "team", "manage", *uri)
        assert code == 0 and "carol: MANAGE on experiment 'team'" in out
        from mlflow.server.auth.client import AuthServiceClient

        exp_id = Store(team.uri).find_experiment("team").experiment_id
        found = AuthServiceClient(team.uri).get_user_permission("carol", "experiment", exp_id)
        assert found.permission == "MANAGE"
        code, _, err = run_main(capsys, "server", "grant", "carol", "team", "WRITE", *uri)
        assert code == 2 and "expected one of READ" in one_line(err)
    # Granting is the admin's: a reader is refused with exit 7.
    with as_user("reader", READER, team.cert):
        code, _, err = run_main(capsys, "server", "grant", "reader", "team", "EDIT", *uri)
    assert code == 7 and "user 'reader' may not grant user permission (HTTP 403)" in one_line(err)
    # The new user's password works: carol reads, and as a manager of `team` she could write.
    with as_user("carol", CAROL, team.cert):
        assert "team" in {e.name for e in Store(team.uri).experiments()}


def test_a_reader_lists_but_cannot_write(team, capsys):
    with as_user("reader", READER, team.cert):
        names = {e.name for e in Store(team.uri).experiments()}
        assert "team" in names
        team_id = Store(team.uri).find_experiment("team").experiment_id
        with pytest.raises(TrackingDenied, match="may not create run"):
            Store(team.uri).create_run(team_id)
        before = len(Store(team.uri).search_runs([team_id]))
        code, _, err = run_main(capsys, "train", "--tracking-uri", team.uri, *sets(TINY))
        assert code == 7 and "user 'reader' may not create run (HTTP 403)" in one_line(err)
        assert len(Store(team.uri).search_runs([team_id])) == before  # nothing was written


def test_a_changed_password_or_a_deleted_user_is_refused_at_once(team):
    """The server trusts a checked password for a while (tracking.CREDENTIAL_CACHE_SECONDS, so
    that not every request pays a scrypt hash), but a change through the API ends that trust
    on the next request: the server has one worker, whose cache the change clears."""
    from mlflow.server.auth.client import AuthServiceClient

    old, new = password("erin"), password("erin-2")
    with as_user("admin", team.admin_password, team.cert):
        add_user(team.uri, "erin", old)
    with as_user("erin", old, team.cert):  # checked once, then trusted from the cache
        for _ in range(3):
            assert "team" in {e.name for e in Store(team.uri).experiments()}
    with as_user("admin", team.admin_password, team.cert):
        AuthServiceClient(team.uri).update_user_password("erin", new)
    with as_user("erin", old, team.cert), pytest.raises(TrackingDenied, match="erin"):
        Store(team.uri).experiments()
    with as_user("erin", new, team.cert):
        assert "team" in {e.name for e in Store(team.uri).experiments()}
    with as_user("admin", team.admin_password, team.cert):
        AuthServiceClient(team.uri).delete_user("erin")
    with as_user("erin", new, team.cert), pytest.raises(TrackingDenied, match="erin"):
        Store(team.uri).experiments()


@pytest.fixture(scope="module")
def writer_runs(team, pg_worker, tmp_path_factory) -> tuple[Done, Done]:
    """The writer's `cnnlab train` and shared `cnnlab tune`, run side by side: each process
    spends most of its time importing and waiting on the server, so on two cores the pair
    takes little longer than the tune alone."""
    home = writer_home(tmp_path_factory.mktemp("writer-home"))
    folder = tmp_path_factory.mktemp("tune")  # the search's own state goes here
    with ThreadPoolExecutor(2) as pool:
        train = pool.submit(train_with_credentials_file, team, home)
        tune = pool.submit(tune_with_pgpassword, team, pg_worker, folder)
        return train.result(), tune.result()


@pytest.fixture(scope="module")
def trained(writer_runs) -> Done:
    """A run of `cnnlab train` by the writer, credentials in ~/.mlflow/credentials."""
    return writer_runs[0]


def writer_home(home: Path) -> Path:
    """A home folder whose ~/.mlflow/credentials holds the writer's password."""
    (home / ".mlflow").mkdir()
    credentials = home / ".mlflow" / "credentials"
    credentials.write_text(
        f"[mlflow]\nmlflow_tracking_username = writer\nmlflow_tracking_password = {WRITER}\n"
    )
    credentials.chmod(0o600)
    return home


def train_with_credentials_file(team, home: Path) -> Done:
    env = {"HOME": str(home), "MLFLOW_TRACKING_SERVER_CERT_PATH": str(team.cert)}
    args = ["train", "--tracking-uri", team.uri, "--quiet", "--json", *sets(TINY)]
    proc = cnnlab(*args, env=env, cwd=home)
    assert proc.returncode == 0, proc.stderr
    run_id = json.loads(proc.stdout.strip().splitlines()[-1])["run_id"]
    return Done(run_id, [proc.stdout, proc.stderr], home)


def test_a_writer_trains_with_the_credentials_file(team, trained):
    with as_user("admin", team.admin_password, team.cert):
        run = Store(team.uri).get_run(trained.id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["test_accuracy"] > 0
    # Artifacts went through the server, which stored them in its runs dir.
    assert list((team.runs_dir / "artifacts").rglob("state_dict.pt"))


def test_the_writers_model_is_registered_and_read_back_through_the_server(team, trained, tmp_path):
    import mlflow
    import numpy as np

    from cnnlab.export import MODEL_ARTIFACT, register_run

    with as_user("admin", team.admin_password, team.cert):
        registered = register_run(team.uri, trained.id, "team-cnn", {"val_loss": "0.5"})
        (version,) = Store(team.uri).model_versions("team-cnn")
        local = Store(team.uri).download_artifacts(trained.id, MODEL_ARTIFACT, str(tmp_path))
    assert registered.version == "1" and version.run_id == trained.id
    assert version.tags["val_loss"] == "0.5" and version.source == registered.source
    model = mlflow.pyfunc.load_model(local)
    assert model.predict(np.zeros((3, 1, 28, 28), np.float32)).shape == (3, 10)


def test_a_user_denied_the_experiment_gets_exit_7_not_no_such_run(team, trained, capsys, tmp_path):
    """A refusal is an answer about the user, not about the run: export, predict and load_run
    say exit 7 / TrackingDenied, where "no such run" (exit 2) would send the user looking."""
    from cnnlab.api import load_run

    outsider = password("outsider")
    with as_user("admin", team.admin_password, team.cert):
        add_user(team.uri, "outsider", outsider)
        grant(team.uri, "outsider", "team", "DENY")
    image = tmp_path / "shoe.png"
    Image.new("L", (28, 28)).save(image)
    out = str(tmp_path / "net.pt2")
    with as_user("outsider", outsider, team.cert):
        for args in (
            ["export", trained.id, "--format", "pt2", "--out", out],
            ["predict", trained.id, str(image)],
        ):
            code, _, err = run_main(capsys, *args, "--tracking-uri", team.uri)
            assert code == 7 and "user 'outsider' may not get run (HTTP 403)" in one_line(err)
        with pytest.raises(TrackingDenied, match="may not get run"):
            load_run(trained.id, tracking_uri=team.uri)
        report = ["report", "--experiment", "team", "--out", str(tmp_path / "r")]
        code, _, err = run_main(capsys, *report, "--tracking-uri", team.uri)
        assert code == 7 and "user 'outsider' may not get experiment by name" in one_line(err)
    assert not (tmp_path / "net.pt2").exists()


@pytest.fixture(scope="module")
def tuned(writer_runs) -> Done:
    """A shared search (study team-1) run by the writer; the database password in PGPASSWORD."""
    return writer_runs[1]


def tune_with_pgpassword(team, pg_worker, folder: Path) -> Done:
    space = {"model.filters": {"dist": "choice", "options": [4, 8]}}
    # No MLflow model per trial: the writer's trained run logs one, through the same code.
    search = [*TINY, "search.engine=optuna", "search.trials=2", "tracking.log_weights=false"]
    search += ["tracking.log_model=false"]
    config = folder / "search.toml"
    config.write_text(to_toml(load_config(None, [*search, override_text("search.space", space)])))
    env = writer_env(team) | {"PGPASSWORD": pg_worker.password, "PGPASSFILE": "/nonexistent"}
    args = ["tune", str(config), "--storage", pg_worker.url, "--study", "team-1"]
    proc = cnnlab(*args, "--tracking-uri", team.uri, "--quiet", "--json", env=env, cwd=folder)
    assert proc.returncode == 0, proc.stderr
    parent = json.loads(proc.stdout.strip().splitlines()[-1])["parent_run_id"]
    return Done(parent, [proc.stdout, proc.stderr], folder)


def test_a_writer_tunes_a_shared_study_whose_password_comes_from_pgpassword(team, pg_worker, tuned):
    parent = tuned.id
    with as_user("writer", WRITER, team.cert):
        store = Store(team.uri)
        team_id = store.find_experiment("team").experiment_id
        children = store.search_runs([team_id], f"tags.`mlflow.parentRunId` = '{parent}'")
        search = store.get_run(parent)
    assert search.info.status == "FINISHED"
    assert search.data.tags["cnnlab.search_state"] == f"{pg_worker.url} study team-1"
    assert len(children) == 2 and {c.info.status for c in children} == {"FINISHED"}


def test_a_client_without_the_servers_certificate_refuses_it(team, capsys):
    with as_user("writer", WRITER, None):
        code, _, err = run_main(capsys, "train", "--tracking-uri", team.uri)
        assert code == 5
        assert "TLS certificate could not be verified (self-signed certificate)" in one_line(err)
        os.environ["MLFLOW_TRACKING_INSECURE_TLS"] = "true"
        try:
            assert "team" in {e.name for e in Store(team.uri).experiments()}
        finally:
            del os.environ["MLFLOW_TRACKING_INSECURE_TLS"]
    with as_user("writer", WRITER, team.cert):
        assert "team" in {e.name for e in Store(team.uri).experiments()}


def test_no_password_in_outputs_logs_params_tags_artifacts_or_reports(
    team, trained, tuned, pg_worker, capsys, tmp_path
):
    """Self-contained: every password this test and its fixtures used, grepped for in what they
    printed, in every param and tag, and in every file they and the server wrote."""
    dave, wrong = password("dave"), "not-" + WRITER
    secret_file = tmp_path / "dave.pw"
    secret_file.write_text(dave + "\n")
    secret_file.chmod(0o600)
    uri = ["--tracking-uri", team.uri]
    printed = [*trained.printed, *tuned.printed]
    with as_user("admin", team.admin_password, team.cert):
        done = run_main(
            capsys, "server", "add-user", "dave", "--password-file", str(secret_file), *uri
        )
        assert done[0] == 0
        printed += done[1:]
    with as_user("writer", wrong, team.cert):
        done = run_main(capsys, "train", *uri)
        assert done[0] == 7
        printed += done[1:]
    with as_user("dave", dave, team.cert):  # the new user's password, used (whatever he may read)
        out = ["--out", str(tmp_path / "dave-report"), *uri]
        printed += run_main(capsys, "report", "--experiment", "team", *out)[1:]
    # The writer's password in the URI itself: the report names the store without it.
    with_password = team.uri.replace("https://", f"https://writer:{WRITER}@")
    with as_user(None, None, team.cert):
        out = ["--out", str(tmp_path / "report"), "--tracking-uri", with_password]
        done = run_main(capsys, "report", "--experiment", "team", *out)
        assert done[0] == 0, done[2]
        printed += done[1:]
    assert "https://writer:***@127.0.0.1" in (tmp_path / "report" / "report.md").read_text()
    texts = [*printed, *record_texts(team)]
    assert len(texts) > 10 and any(trained.id in text for text in printed)
    folders = [team.home, tmp_path, trained.folder, tuned.folder]
    files = [p for folder in folders for p in folder.rglob("*") if p.is_file()]
    assert len(files) > 10 and any(p.name == "state_dict.pt" for p in files)
    assert (tmp_path / "report" / "report.md").is_file()
    secrets = [team.admin_password, READER, WRITER, CAROL, dave, wrong, pg_worker.password]
    for secret in secrets:
        assert not any(secret in text for text in texts), "a password in an output or a run"
    # The files that hold a password on purpose are found, so the grep works; no other file.
    holders = {p for p in files if any(s.encode() in p.read_bytes() for s in secrets)}
    assert holders == {secret_file, trained.folder / ".mlflow" / "credentials"}


def record_texts(team) -> list[str]:
    """Every param and tag of every run in the store, read by the admin."""
    with as_user("admin", team.admin_password, team.cert):
        store = Store(team.uri)
        runs = store.search_runs([e.experiment_id for e in store.experiments()])
    assert runs
    return [json.dumps([r.data.params, r.data.tags]) for r in runs]


def writer_env(team) -> dict[str, str]:
    return {
        "MLFLOW_TRACKING_USERNAME": "writer",
        "MLFLOW_TRACKING_PASSWORD": WRITER,
        "MLFLOW_TRACKING_SERVER_CERT_PATH": str(team.cert),
    }


def sets(overrides: list[str]) -> list[str]:
    return [arg for item in overrides for arg in ("--set", item)]
