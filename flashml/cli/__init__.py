"""The `flashml` command: `serve` (the default), `settings`, `users`, `keys`, `models` (with `models drift`),
`datasets`, `jobs`, `predictions`.

``main`` is the click group (``flashml.cli.main``); each module below adds its commands to it when imported:
``serve`` runs the server, ``admin`` works on the database in-process, ``models``, ``drift``, ``jobs`` and
``predictions`` call a running server over HTTP like any client, and ``output`` prints their records.
"""

from flashml.cli import admin, doctor, drift, jobs, models, predictions, serve
from flashml.cli.main import main

__all__ = ["admin", "doctor", "drift", "jobs", "main", "models", "predictions", "serve"]
