"""Which server and key the client and the CLI use: flag, then environment, then profile; a profile file others may
read is warned about; a profile named but missing is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flashml.client import DEFAULT_SERVER, ClientError, profiles_path, resolve_connection

PROFILES = """\
[default]
server = "http://default.example:8000"
key = "fml_default"

[prod]
server = "https://prod.example/"
key = "fml_prod"

[keyless]
server = "http://keyless.example"
"""


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "profiles.toml"
    path.write_text(PROFILES)
    path.chmod(0o600)
    return {"FLASHML_PROFILES": str(path)}


def test_a_flag_beats_the_environment_which_beats_the_profile(env):
    both = {**env, "FLASHML_SERVER": "http://env.example", "FLASHML_KEY": "fml_env"}
    conn = resolve_connection("http://flag.example", "fml_flag", env=both)
    assert (conn.server, conn.key, conn.server_from, conn.key_from) == ("http://flag.example", "fml_flag", "flag",
                                                                        "flag")
    conn = resolve_connection(env=both)
    assert (conn.server, conn.key, conn.server_from, conn.key_from) == ("http://env.example", "fml_env",
                                                                        "FLASHML_SERVER", "FLASHML_KEY")
    conn = resolve_connection(env=env)  # nothing named: [default]
    assert (conn.server, conn.key, conn.profile) == ("http://default.example:8000", "fml_default", "default")
    assert conn.server_from == "profile default" and conn.server_named


def test_each_field_comes_from_its_own_first_source(env):
    conn = resolve_connection(profile="prod", env={**env, "FLASHML_KEY": "fml_env"})
    assert conn.server == "https://prod.example" and conn.key == "fml_env"  # env beats the profile, field by field
    conn = resolve_connection(key="fml_flag", env={**env, "FLASHML_PROFILE": "prod"})
    assert conn.server == "https://prod.example" and conn.key == "fml_flag" and conn.profile == "prod"


def test_a_profile_flag_beats_flashml_profile(env):
    conn = resolve_connection(profile="keyless", env={**env, "FLASHML_PROFILE": "prod"})
    assert conn.server == "http://keyless.example" and conn.key is None


def test_older_names_still_work_and_lose_to_the_new_ones(env):
    old = {"FLASHML_URL": "http://old.example", "FLASHML_API_KEY": "fml_old", "FLASHML_PROFILES": "/nonexistent"}
    conn = resolve_connection(env=old)
    assert (conn.server, conn.key) == ("http://old.example", "fml_old")
    assert not conn.server_named  # FLASHML_URL only ever moved the HTTP commands: keys/users stay local
    conn = resolve_connection(env={**old, "FLASHML_SERVER": "http://new.example", "FLASHML_KEY": "fml_new"})
    assert (conn.server, conn.key) == ("http://new.example", "fml_new") and conn.server_named


def test_nothing_anywhere_is_the_default_address_and_no_key(tmp_path):
    conn = resolve_connection(env={"FLASHML_PROFILES": str(tmp_path / "none.toml")})
    assert (conn.server, conn.key, conn.server_from, conn.server_named) == (DEFAULT_SERVER, None, "default", False)


def test_an_unknown_profile_is_refused_with_the_known_ones(env):
    with pytest.raises(ClientError) as err:
        resolve_connection(profile="staging", env=env)
    assert err.value.code == "unknown_profile" and err.value.status is None
    assert "staging" in err.value.message and "default, keyless, prod" in err.value.message
    with pytest.raises(ClientError, match="no profile"):
        resolve_connection(env={**env, "FLASHML_PROFILE": "nope"})
    with pytest.raises(ClientError) as err:  # no file at all: named profiles cannot exist
        resolve_connection(profile="prod", env={"FLASHML_PROFILES": str(Path(env["FLASHML_PROFILES"]).parent / "x")})
    assert err.value.code == "unknown_profile"


def test_a_profile_file_others_may_read_is_warned_about(env):
    path = Path(env["FLASHML_PROFILES"])
    warned: list[str] = []
    resolve_connection(env=env, warn=warned.append)
    assert warned == []  # 0600: quiet
    for mode in (0o644, 0o640, 0o604):
        path.chmod(mode)
        warned.clear()
        conn = resolve_connection(env=env, warn=warned.append)
        assert conn.key == "fml_default"  # still used
        assert len(warned) == 1 and "read by other users" in warned[0] and f"chmod 600 {path}" in warned[0]


def test_a_profile_file_is_not_read_when_flags_say_everything(env):
    path = Path(env["FLASHML_PROFILES"])
    path.chmod(0o644)
    warned: list[str] = []
    resolve_connection("http://flag.example", "fml_flag", env=env, warn=warned.append)
    assert warned == []


@pytest.mark.parametrize("text, words", [("[prod\nserver=1", "cannot read"),
                                         ('[prod]\nserver = 1\n', "may hold only"),
                                         ('[prod]\nserver = "x"\ntoken = "y"\n', "may hold only")])
def test_a_broken_profile_file_says_what_is_wrong(env, text, words):
    Path(env["FLASHML_PROFILES"]).write_text(text)
    with pytest.raises(ClientError) as err:
        resolve_connection(env=env)
    assert err.value.code == "bad_profile_file" and words in err.value.message


def test_where_the_profile_file_lives():
    assert profiles_path({"FLASHML_PROFILES": "/etc/fml.toml"}) == Path("/etc/fml.toml")
    assert profiles_path({"XDG_CONFIG_HOME": "/cfg", "HOME": "/h"}) == Path("/cfg/flashml/profiles.toml")
    assert profiles_path({"HOME": "/h"}) == Path("/h/.config/flashml/profiles.toml")
    assert profiles_path() == profiles_path(os.environ)
