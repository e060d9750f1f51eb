"""Which server and key a client talks to: a flag, an environment variable or a profile, the first that says.

A profile file is TOML, one table per profile (``[default]`` is used when none is named)::

    [prod]
    server = "https://ml.example.com"
    key = "fml_..."

It lives at ``$FLASHML_PROFILES``, else ``$XDG_CONFIG_HOME/flashml/profiles.toml`` (``~/.config/flashml/...``).
It holds keys, so a file that others than its owner may read gets a warning.
"""

from __future__ import annotations

import os
import stat
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from flashml.client.errors import ClientError

DEFAULT_SERVER = "http://127.0.0.1:8000"
# (current name, older names still read): the older ones came before profiles and keep working.
SERVER_VARS = ("FLASHML_SERVER", "FLASHML_URL")
KEY_VARS = ("FLASHML_KEY", "FLASHML_API_KEY")


@dataclass(frozen=True)
class Connection:
    """A resolved server address and key, and where each came from (``flag``, ``FLASHML_SERVER``, ``profile
    prod``, ``default``, ...)."""

    server: str
    key: str | None
    server_from: str
    key_from: str | None
    profile: str | None = None  # the profile read, if any

    @property
    def server_named(self) -> bool:
        """Whether someone named a server (flag, FLASHML_SERVER or a profile), not just the default address.

        The older ``--url``/FLASHML_URL only moved the HTTP commands' default address, so they do not count: with
        them, ``flashml keys``/``users`` keep working in-process on the data directory as they always did."""
        return self.server_from not in ("default", "FLASHML_URL", "--url")


def profiles_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the profile file is: $FLASHML_PROFILES, else $XDG_CONFIG_HOME (default ~/.config)/flashml/profiles.toml."""
    env = os.environ if env is None else env
    if env.get("FLASHML_PROFILES"):
        return Path(env["FLASHML_PROFILES"]).expanduser()
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path(env.get("HOME", "~")) / ".config"
    return base.expanduser() / "flashml" / "profiles.toml"


def _stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def load_profiles(path: Path, warn: Callable[[str], None] = _stderr) -> dict[str, dict[str, str]]:
    """The profiles of ``path`` ({} when there is no file); a file others may read is warned about."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return {}
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        warn(f"{path} may be read by other users and holds API keys: chmod 600 {path}")
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ClientError(None, "bad_profile_file", f"cannot read the profile file {path}: {exc}") from None
    profiles: dict[str, dict[str, str]] = {}
    for name, table in data.items():
        if not isinstance(table, dict) or any(not isinstance(v, str) for v in table.values()) \
                or set(table) - {"server", "key"}:
            raise ClientError(None, "bad_profile_file", f"{path}: profile [{name}] may hold only server = \"...\" "
                                                        "and key = \"...\"")
        profiles[name] = dict(table)
    return profiles


def resolve_connection(server: str | None = None, key: str | None = None, profile: str | None = None, *,
                       env: Mapping[str, str] | None = None, warn: Callable[[str], None] = _stderr) -> Connection:
    """The server and key to use, each from the first place that gives it: the argument (a flag), the environment
    (FLASHML_SERVER / FLASHML_KEY, or the older FLASHML_URL / FLASHML_API_KEY), then the profile (``profile``, else
    FLASHML_PROFILE, else ``[default]`` if the file has one). A profile named but missing is a ClientError
    ``unknown_profile``."""
    env = os.environ if env is None else env
    server_from = key_from = None
    if server:
        server_from = "flag"
    else:
        server, server_from = next(((env[v], v) for v in SERVER_VARS if env.get(v)), (None, None))
    if key:
        key_from = "flag"
    else:
        key, key_from = next(((env[v], v) for v in KEY_VARS if env.get(v)), (None, None))
    name = profile or env.get("FLASHML_PROFILE") or None
    chosen = None
    if name or server is None or key is None:
        path = profiles_path(env)
        profiles = load_profiles(path, warn)
        if name and name not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            raise ClientError(None, "unknown_profile", f"no profile [{name}] in {path} (profiles there: {known})")
        chosen = name or ("default" if "default" in profiles else None)
        table = profiles.get(chosen, {}) if chosen else {}
        if server is None and table.get("server"):
            server, server_from = table["server"], f"profile {chosen}"
        if key is None and table.get("key"):
            key, key_from = table["key"], f"profile {chosen}"
    if server is None:
        server, server_from = DEFAULT_SERVER, "default"
    return Connection(server=server.rstrip("/"), key=key, server_from=server_from or "default", key_from=key_from,
                      profile=chosen)
