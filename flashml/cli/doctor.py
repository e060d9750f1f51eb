"""`flashml doctor`: check this node with the settings `flashml serve` would use, and print what is wrong."""

from __future__ import annotations

import dataclasses
import shutil
import textwrap
from pathlib import Path
from typing import Any

import click
import msgspec

from flashml.cli.main import main
from flashml.cli.options import given_settings, setting_options
from flashml.ops.doctor import DEFAULT_MIN_FREE, DoctorOptions, Report, run_checks, settings_report
from flashml.runtime.memory_budget import parse_size
from flashml.settings import SettingsError, load_settings

SHOWN = {"ok": "ok", "warn": "warn", "fail": "FAIL"}


class Size(click.ParamType):
    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@main.command()
@setting_options
@click.option("--min-free", type=Size(), default=f"{DEFAULT_MIN_FREE // 2**30}GiB", show_default=True,
              help="Free disk space under the data directory below which the doctor warns (bytes, or KiB/MiB/GiB).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (status, exit_code, checks).")
def doctor(config: Path | None = None, min_free: int = DEFAULT_MIN_FREE, as_json: bool = False,
           **values: Any) -> None:
    """Check this node as `flashml serve` would use it: Python and packages, ONNX Runtime providers (each really
    loaded), the GPU, the data directory, the store, the database, the listen address, TLS and the running server.

    Give it the settings you give serve (the same flags, FLASHML_* variables or --config). Prints one row per
    check: ok, warn or FAIL with a sentence. Exit status: 0 when every check is ok, 1 when there are warnings
    only, 2 when a check failed.
    """
    try:
        settings = load_settings(given_settings(values), config_file=config)
    except SettingsError as exc:
        result = settings_report(exc)
    else:
        settings = dataclasses.replace(settings, data_dir=settings.data_dir.resolve())
        result = run_checks(settings, DoctorOptions(min_free_bytes=min_free))
    if as_json:
        click.echo(msgspec.json.encode(result).decode())
    else:
        click.echo(table(result))
    raise SystemExit(result.exit_code)


def table(result: Report, width: int | None = None) -> str:
    """One row per check, the sentence wrapped under its own column; then the verdict."""
    width = width or min(shutil.get_terminal_size((100, 24)).columns, 120)
    name_width = max(len(c.name) for c in result.checks)
    indent = 6 + name_width + 2
    lines = []
    for c in result.checks:
        text = textwrap.wrap(c.message, max(40, width - indent), break_on_hyphens=False) or [""]
        lines.append(f"{SHOWN[c.status]:<6}{c.name:<{name_width}}  {text[0]}")
        lines += [" " * indent + more for more in text[1:]]
    counts = {s: sum(c.status == s for c in result.checks) for s in ("warn", "fail")}
    verdict = {"ok": "Every check is ok.", "warn": f"{counts['warn']} warning(s), nothing failed.",
               "fail": f"{counts['fail']} check(s) failed, {counts['warn']} warning(s)."}[result.status]
    lines.append(f"\n{verdict} (exit status {result.exit_code})")
    return "\n".join(lines)
