"""`flashml serve`: one process, Granian with one worker; and `flashml settings`."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import resource
import socket
import sys
from pathlib import Path
from typing import Any

import click
from granian import Granian
from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings
from granian.log import LogLevels

from flashml import event_loop
from flashml.cli.main import main
from flashml.cli.options import given_settings, resolve, setting_options
from flashml.settings import RESOLVED_ENV, Settings, settings_table
from flashml.startup_checks import exposure_warning, private_data_dir
from flashml.telemetry.log_format import granian_log_config

log = logging.getLogger("flashml")


@main.command()
@setting_options
def serve(config: Path | None = None, **values: Any) -> None:
    """Start the server: one process, Granian with one worker."""
    settings = resolve(config, given_settings(values))
    refuse_a_taken_port(settings.host, settings.port)
    _start_checks(settings)
    os.environ[RESOLVED_ENV] = settings.to_json()
    event_loop.install()  # before Granian forks its worker, which builds the loop with asyncio.new_event_loop()
    server = Granian("flashml.app:app_from_env", factory=True, address=settings.host, port=settings.port,
                     interface=Interfaces.RSGI, workers=1, runtime_threads=http_threads(settings.http_threads),
                     log_level=LogLevels(settings.log_level.lower()),
                     # Our own access log (flashml.access) has the request id and the key; Granian's stays off.
                     log_access=False, log_dictconfig=granian_log_config(settings.log_format),
                     workers_kill_timeout=30, **_connection_options(settings), **_tls_options(settings))
    server.serve()


def refuse_a_taken_port(host: str, port: int) -> None:
    """Stop with a clear error when something already listens on ``host:port``, before anything starts.

    Granian binds its socket with SO_REUSEPORT (its Rust ListenerSpec sets it, with no option to turn it off), so a
    second server on a port in use would start, print its own setup link, and share the requests with the first.
    A probe bound without SO_REUSEPORT is refused by any listener there. SO_REUSEADDR stays on (create_server's
    default) so that the last run's connections in TIME_WAIT do not block a restart.
    """
    if port == 0:  # the system picks a free port
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.create_server((host, port), family=family, reuse_port=False):
            pass
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise click.ClickException(
                f"Port {port} on {host} is already in use: another FlashML server or another program listens "
                f"there. Stop it, or start this one with another port (--port).") from None
        raise click.ClickException(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.") from None


def _start_checks(settings: Settings) -> None:
    """Private files from here on (the umask Granian's worker and SQLite inherit), a private data directory named
    (the admin commands must be given the same one), and a warning when the server would listen beyond this
    machine in clear text. Printed like the setup link: the person starting the server must see them."""
    for line in (f"Data directory: {settings.data_dir}", private_data_dir(settings.data_dir),
                 exposure_warning(settings)):
        if line:
            print(line, file=sys.stderr, flush=True)
    if settings.database_url:  # a server database: reachable before Granian starts, or one sentence saying why not
        from flashml.db.engine import shown
        from flashml.db.migrate import DatabaseUnreachableError, reach

        try:
            asyncio.run(reach(settings.database_url))
        except DatabaseUnreachableError as exc:
            raise click.ClickException(str(exc)) from None
        print(f"Database: {shown(settings.database_url)}", file=sys.stderr, flush=True)


def http_threads(setting: int, cores: int | None = None) -> int:
    """Granian's I/O threads: the setting, or one per four cores (1 to 4). On a small CPU box one thread keeps
    up and more would take cores from the model; a GPU box's large binary tensors need several to read them."""
    if setting > 0:
        return setting
    return max(1, min(4, (cores or os.cpu_count() or 1) // 4))


def _connection_options(settings: Settings) -> dict[str, Any]:
    """Bounds that keep idle and slow clients from holding the server.

    HTTP/1.1 only: in Granian's auto mode a connection that never sends a byte waits forever in the HTTP/2
    detection, outside the header timeout, and 1024 of them (the default limit) locked every client out.
    """
    limit = raise_open_files(settings.max_connections)
    return {"http": HTTPModes.http1, "backpressure": limit, "backlog": min(limit, 4096),
            "http1_settings": HTTP1Settings(header_read_timeout=int(settings.header_timeout_s * 1000))}


def raise_open_files(connections: int, spare: int = 256) -> int:
    """Raise the open-files soft limit towards the hard one so that ``connections`` sockets fit next to the
    files the server itself opens (``spare``); returns the connections that fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + spare
    if soft != resource.RLIM_INFINITY and soft < wanted:
        soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    fits = connections if soft == resource.RLIM_INFINITY else max(16, min(connections, soft - spare))
    if fits < connections:
        log.warning("only %d connections fit the open-files limit (%d); raise it (LimitNOFILE)", fits, soft)
    return fits


def _tls_options(settings: Settings) -> dict[str, Any]:
    """Granian terminates TLS itself when a certificate and key are set."""
    if not settings.tls_certificate:
        return {}
    return {"ssl_cert": Path(settings.tls_certificate).expanduser().resolve(),
            "ssl_key": Path(settings.tls_key).expanduser().resolve()}


@main.command("settings")
def settings_cmd() -> None:
    """Print the table of every setting (Markdown)."""
    click.echo(settings_table())
