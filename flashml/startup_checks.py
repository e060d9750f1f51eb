"""What `flashml serve` (and the CLI commands that open the database) check and fix before anything starts.

The data directory holds password hashes, session tokens, API key hashes and the audit log. Under the common
umask 022 everything FlashML made was readable by every local user, so the process sets umask 077 first:
every folder and file made afterwards, by this process, Granian's worker, SQLite or the validation sandbox
(all inherit it), is private to the user running FlashML. A data directory left looser by an older FlashML
or a hand-made ``mkdir`` is tightened to 0700 with a notice: the files under it cannot be reached then, and a
warning alone would leave an upgraded install exposed until someone read it.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from pathlib import Path

from flashml.settings import Settings

PRIVATE_UMASK = 0o077
PRIVATE_DIR = 0o700


def private_data_dir(path: Path) -> str | None:
    """Set the private umask, create ``path`` 0700 or tighten it to 0700; returns a notice to print, if any."""
    os.umask(PRIVATE_UMASK)
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if not mode & 0o077:
        return None
    try:
        path.chmod(PRIVATE_DIR)
    except OSError as exc:  # not ours to change (another owner): say so, and what to run
        return (f"WARNING: the data directory {path} is readable by other users (mode {mode:04o}) and FlashML "
                f"could not change that ({exc.strerror}). Run: chmod 700 {path}")
    return (f"FlashML made its data directory {path} private (mode {mode:04o} -> 0700): it holds password "
            f"hashes, sessions and the audit log.")


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost, or "" (every address)


def exposure_warning(settings: Settings) -> str | None:
    """A warning when the server listens beyond this machine in clear text (no TLS, no HTTPS proxy in front)."""
    if settings.tls_certificate or settings.trusted_proxies or _is_loopback(settings.host):
        return None
    return (f"\nWARNING: FlashML listens on {settings.host}:{settings.port} without TLS: passwords, session "
            f"cookies and API keys cross the network in clear text. Either give it a certificate "
            f"(--tls-certificate and --tls-key), or serve it through an HTTPS proxy and name that proxy in "
            f"--trusted-proxies, or listen on this machine only (--host 127.0.0.1).\n")
