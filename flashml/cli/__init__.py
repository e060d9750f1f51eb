"""The `flashml` command: `serve` (the default), `settings`, `db`, `users`, `keys`, `models` (with
`models drift`), `versions`, `datasets`, `jobs`, `schedules`, `predictions`, `audit`, `metrics`, `whoami`.

``main`` is the click group (``flashml.cli.main``); each module below adds its commands to it when imported:
``serve`` runs the server; ``users`` and ``keys`` act on a named server or in-process on the data directory
(``admin`` decides which); the others call a running server through flashml.client like any program, and
``output`` prints their records.
"""

from flashml.cli import (
    admin,
    audit,
    backup,
    db,
    doctor,
    drift,
    jobs,
    keys,
    metrics,
    models,
    predictions,
    schedules,
    serve,
    users,
    versions,
)
from flashml.cli.main import main

__all__ = ["admin", "audit", "backup", "db", "doctor", "drift", "jobs", "keys", "main", "metrics", "models",
           "predictions", "schedules", "serve", "users", "versions"]
