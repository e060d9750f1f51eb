"""`flashml db current` and `flashml db upgrade` on real SQLite files in a data directory."""

import sqlite3
from pathlib import Path

from click.testing import CliRunner

from flashml.cli import main
from flashml.db.migrate import head

PREVIOUS_RELEASE = Path(__file__).with_name("previous_release.sql")


def flashml(*args: str):
    return CliRunner().invoke(main, list(args), env={"FLASHML_DATABASE_URL": None, "FLASHML_CONFIG": None,
                                                      "FLASHML_DATA_DIR": None})


def previous_release(data_dir: Path) -> Path:
    data_dir.mkdir()
    db = data_dir / "flashml.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(PREVIOUS_RELEASE.read_text())
    conn.close()
    return db


def test_current_then_upgrade_a_previous_release_database(tmp_path):
    db = previous_release(tmp_path / "data")
    res = flashml("db", "current", "--data-dir", str(tmp_path / "data"))
    assert res.exit_code == 0, res.output
    assert f"Database: {db}" in res.output and "before migrations" in res.output
    assert f"Head: {head()} (flashml db upgrade brings it there)" in res.output
    with sqlite3.connect(db) as conn:  # current changed nothing
        assert "alembic_version" not in {n for (n,) in conn.execute("SELECT name FROM sqlite_master")}

    res = flashml("db", "upgrade", "--data-dir", str(tmp_path / "data"))
    assert res.exit_code == 0, res.output
    assert f"Upgraded {db} (from before migrations) to revision {head()}." in res.output
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(head(),)]
        assert conn.execute("SELECT name FROM users").fetchall() == [("ada",)]

    res = flashml("db", "current", "--data-dir", str(tmp_path / "data"))
    assert f"Revision: {head()}" in res.output and "(up to date)" in res.output
    res = flashml("db", "upgrade", "--data-dir", str(tmp_path / "data"))
    assert res.exit_code == 0 and f"already at the head revision {head()}" in res.output


def test_a_data_directory_without_a_database_is_refused_and_left_alone(tmp_path):
    for command in ("current", "upgrade"):
        res = flashml("db", command, "--data-dir", str(tmp_path / "none"))
        assert res.exit_code == 1
        assert f"no database at {tmp_path / 'none' / 'flashml.db'}" in res.output
    assert not (tmp_path / "none").exists()


def test_a_database_url_names_the_database_and_a_bad_one_is_refused(tmp_path):
    db = previous_release(tmp_path / "data")
    res = flashml("db", "upgrade", "--database-url", f"sqlite+aiosqlite:///{db}")
    assert res.exit_code == 0 and f"Upgraded {db}" in res.output
    res = flashml("db", "current", "--database-url", "postgresql://flashml:s3cret@db.lan/flashml")
    assert res.exit_code == 2 and "postgresql+asyncpg://" in res.output and "s3cret" not in res.output


def test_a_database_that_cannot_be_used_is_one_sentence_without_the_password(tmp_path):
    res = flashml("db", "current", "--database-url", "postgresql+asyncpg://flashml:s3cret@127.0.0.1:1/flashml")
    assert res.exit_code == 1 and "s3cret" not in res.output
    assert "cannot use the database postgresql+asyncpg://flashml:***@127.0.0.1:1/flashml" in res.output
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "flashml.db").write_bytes(b"not a database, but a file of that name " * 4)
    res = flashml("db", "upgrade", "--data-dir", str(tmp_path / "data"))
    assert res.exit_code == 1 and "file is not a database" in res.output and "Traceback" not in res.output


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


def test_serve_with_an_unreachable_database_stops_with_one_sentence(tmp_path):
    url = f"postgresql+asyncpg://flashml:hunter2secret@127.0.0.1:{_closed_port()}/flashml"
    args = ["serve", "--port", str(_closed_port()), "--data-dir", str(tmp_path / "d"), "--database-url", url]
    res = CliRunner().invoke(main, args, env={"FLASHML_CONFIG": None})
    assert res.exit_code == 1, res.output
    assert "The database postgresql+asyncpg://flashml:***@127.0.0.1:" in res.output
    assert "cannot be reached" in res.output and "Traceback" not in res.output
    assert "hunter2secret" not in res.output


def test_the_doctor_names_an_unreachable_database_without_its_password(tmp_path):
    from flashml.ops.doctor_database import settings_database_checks
    from flashml.settings import load_settings

    url = f"postgresql+asyncpg://flashml:hunter2secret@127.0.0.1:{_closed_port()}/flashml"
    (check,) = settings_database_checks(load_settings({"data_dir": tmp_path, "database_url": url}, env={}))
    assert check.status == "fail" and "cannot be reached" in check.message
    assert "hunter2secret" not in check.message and "***" in check.message
