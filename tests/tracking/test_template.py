"""A new embedded store is a copy of an empty migrated one: the same store MLflow would make."""

import os
import sqlite3
import stat
import threading
from pathlib import Path

import pytest
from mlflow.store.tracking import sqlalchemy_store

from cnnlab.tracking import Store, default_uri, prepare_store, seed_store, template_path


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _schema(db: Path) -> set[tuple[str, str, str]]:
    """Every table, index and trigger with its SQL, the lines of each sorted: MLflow's own
    migrations list a table's constraints in an order that varies from one run to the next."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
    return {(t, n, "\n".join(sorted((sql or "").splitlines()))) for t, n, sql in rows}


def _rows(db: Path) -> dict[str, list]:
    with sqlite3.connect(db) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {n: sorted(map(repr, conn.execute(f'SELECT * FROM "{n}"'))) for n in names}


def test_a_seeded_store_is_the_store_mlflow_migrates_with_its_own_default_experiment(tmp_path):
    fresh = tmp_path / "fresh" / "mlflow.db"
    fresh.parent.mkdir()
    made = sqlalchemy_store.SqlAlchemyStore(f"sqlite:///{fresh}", str(tmp_path / "fresh" / "art"))
    made.engine.dispose()

    uri = default_uri(tmp_path / "runs")
    prepare_store(uri)
    seeded = tmp_path / "runs" / "mlflow.db"
    assert seeded.is_file() and template_path().is_file()
    store = Store(uri)  # MLflow opens the copy: no migration, the Default experiment added
    default = store.find_experiment("Default")
    assert default.experiment_id == "0"
    # Where a client's MLflow puts the Default experiment of any new store, not the template's.
    assert default.artifact_location == str(Path.cwd() / "mlruns" / "0")

    assert _schema(seeded) == _schema(fresh)
    ours, theirs = _rows(seeded), _rows(fresh)
    assert ours.pop("experiments") != theirs.pop("experiments")  # paths and times differ
    assert ours == theirs
    exp_id = store.ensure_experiment("e")
    assert exp_id == "1"  # numbered as in a store MLflow made
    run_id = store.create_run(exp_id, "r", {"k": "v"}).info.run_id
    store.log_params(run_id, {"a": 1})
    assert store.get_run(run_id).data.params == {"a": "1"}


def test_an_existing_store_is_never_replaced(tmp_path):
    path = tmp_path / "mlflow.db"
    path.write_bytes(b"someone's store")
    assert not seed_store(path)
    assert path.read_bytes() == b"someone's store"


def test_seeding_makes_the_template_once_and_copies_it_without_mlflow(tmp_path, monkeypatch):
    assert seed_store(tmp_path / "a.db")
    made = template_path().stat()

    def no_migrations(*args, **kwargs):
        raise AssertionError("the template is there: nothing to migrate")

    monkeypatch.setattr(sqlalchemy_store, "SqlAlchemyStore", no_migrations)
    assert seed_store(tmp_path / "b.db")
    assert template_path().stat().st_mtime_ns == made.st_mtime_ns
    assert (tmp_path / "a.db").read_bytes() == (tmp_path / "b.db").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.db", "b.db", "cache"]
    folder = os.lstat(template_path().parent)
    assert stat.S_IMODE(folder.st_mode) == 0o700


def test_a_template_others_can_write_is_not_copied(tmp_path, caplog):
    assert seed_store(tmp_path / "a.db")
    os.chmod(template_path(), 0o666)
    caplog.set_level("INFO", logger="cnnlab")
    assert not seed_store(tmp_path / "b.db")
    assert not (tmp_path / "b.db").exists()
    assert "writable by others" in caplog.text


def test_a_cache_folder_that_is_a_symlink_is_not_used(tmp_path, cache, caplog):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    cache.mkdir()
    (cache / "stores").symlink_to(elsewhere)
    caplog.set_level("INFO", logger="cnnlab")
    assert not seed_store(tmp_path / "a.db")
    assert list(elsewhere.iterdir()) == [] and not (tmp_path / "a.db").exists()
    assert "is a symlink" in caplog.text


def test_a_failed_migration_leaves_no_store_and_no_half_made_template(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(sqlalchemy_store, "SqlAlchemyStore", broken)
    assert not seed_store(tmp_path / "runs" / "mlflow.db")
    assert not (tmp_path / "runs").exists()
    assert list(template_path().parent.iterdir()) == []
    monkeypatch.undo()
    uri = default_uri(tmp_path / "runs")
    assert Store(uri).find_experiment("Default") is not None  # the next open seeds it


def test_processes_seeding_one_path_at_once_leave_one_whole_store(tmp_path):
    seed_store(tmp_path / "warm.db")  # the template exists: the race is on the copy
    path = tmp_path / "runs" / "mlflow.db"
    path.parent.mkdir()
    won, start = [], threading.Barrier(4)

    def seed():
        start.wait()
        won.append(seed_store(path))

    threads = [threading.Thread(target=seed) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won) == [False, False, False, True]
    assert path.read_bytes() == (tmp_path / "warm.db").read_bytes()
    assert [p.name for p in path.parent.iterdir()] == ["mlflow.db"]
