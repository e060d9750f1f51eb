"""The `flashml` command: `serve` (the default), `settings`, `users`, `keys`, `models`, `datasets`, `jobs`.

``main`` is the click group (``flashml.cli.main``); each module below adds its commands to it when imported:
``serve`` runs the server, ``admin`` works on the database in-process, ``models`` and ``jobs`` call a running
server over HTTP like any client, and ``output`` prints their records.
"""

from flashml.cli import admin, jobs, models, serve
from flashml.cli.main import main

__all__ = ["admin", "jobs", "main", "models", "serve"]
