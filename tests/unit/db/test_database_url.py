"""The database_url setting: what it accepts, what it refuses (without echoing a password), what it opens."""

from pathlib import Path

import pytest

from flashml.db.engine import create_engine, database_target, shown, sqlite_file
from flashml.settings import SettingsError, load_settings


def settings(url: str, tmp_path: Path):
    return load_settings({"database_url": url, "data_dir": str(tmp_path)}, env={})


def test_empty_means_the_sqlite_file_in_the_data_directory(tmp_path):
    s = settings("", tmp_path)
    assert database_target(s) == tmp_path / "flashml.db" == sqlite_file(database_target(s))


def test_a_postgresql_url_is_kept_and_shown_without_its_password(tmp_path):
    url = "postgresql+asyncpg://flashml:s3cret@db.lan:5432/flashml"
    target = database_target(settings(url, tmp_path))
    assert target == url and sqlite_file(target) is None
    assert shown(target) == "postgresql+asyncpg://flashml:***@db.lan:5432/flashml"


def test_a_postgresql_engine_gets_the_pool_and_a_sqlite_engine_the_file(tmp_path):
    pg = create_engine("postgresql+asyncpg://flashml@127.0.0.1:1/flashml")  # connects only when used
    assert pg.dialect.name == "postgresql" and pg.pool.size() == 10
    lite = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    assert lite.dialect.name == "sqlite" and (tmp_path / "x.db").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(("url", "says"), [
    ("postgresql://flashml:s3cret@db.lan/flashml", "write postgresql+asyncpg://... instead of postgresql://"),
    ("postgres://flashml:s3cret@db.lan/flashml", "instead of postgres://"),
    ("mysql+aiomysql://flashml:s3cret@db.lan/flashml", "scheme 'mysql+aiomysql' is not"),
    ("flashml.db", "scheme '(none)' is not"),
])
def test_other_urls_are_refused_without_the_password(tmp_path, url, says):
    with pytest.raises(SettingsError, match="database_url") as err:
        settings(url, tmp_path)
    assert says in str(err.value) and "s3cret" not in str(err.value)
