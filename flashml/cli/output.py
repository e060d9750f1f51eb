"""How the commands print records: aligned tables (one shared printer), JSON for scripts, and the one-line texts
of a key's limits, a job, an alias and a version's serving config."""

from __future__ import annotations

import datetime
import math
import shutil
import sys
from collections.abc import Sequence
from typing import Any

import click
import msgspec

from flashml.auth.records import KeyRecord

MIN_COLUMN = 8


def print_json(value: Any) -> None:
    """The API's records (or plain values) as indented JSON on standard output."""
    click.echo(msgspec.json.format(msgspec.json.encode(value), indent=2).decode())


def fit(cells: Sequence[str], widths: list[int]) -> str:
    out = []
    for cell, width in zip(cells, widths, strict=True):
        text = cell if len(cell) <= width else cell[:max(width - 1, 0)] + "\u2026"
        out.append(text.ljust(width))
    return "  ".join(out).rstrip()


def table_lines(headers: Sequence[str], rows: Sequence[Sequence[Any]], width: int | None = None) -> list[str]:
    """Aligned columns under upper-case headers, two spaces apart; while the table is wider than ``width`` (None:
    no limit) the widest column is narrowed (never below 8 characters) and its long cells end in an ellipsis."""
    cells = [["" if c is None else str(c).replace("\n", " ") for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    while width is not None and sum(widths) + 2 * (len(widths) - 1) > width:
        widest = max(range(len(widths)), key=lambda i: widths[i])
        if widths[widest] <= MIN_COLUMN:
            break
        widths[widest] -= 1
    return [fit([h.upper() for h in headers], widths), *(fit(r, widths) for r in cells)]


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], empty: str = "nothing to show") -> None:
    """The table on standard output; with no rows, ``empty`` on standard error (standard output stays empty).

    On a terminal the table fits its width (long cells cut with an ellipsis); piped into a file, grep or a script,
    nothing is cut: what a person reads on screen and what a program reads are the same values.
    """
    if not rows:
        click.echo(empty, err=True)
        return
    width = shutil.get_terminal_size((100, 24)).columns if sys.stdout.isatty() else None
    for line in table_lines(headers, rows, width):
        click.echo(line)


def when(ts: float | None) -> str:
    """A time stamp as UTC to the second, or "-"."""
    if ts is None:
        return "-"
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def limits_text(k: KeyRecord) -> str:
    parts = []
    if k.rate_limit_per_s is not None:
        burst = k.burst if k.burst is not None else max(1, math.ceil(k.rate_limit_per_s))
        parts.append(f"{k.rate_limit_per_s:g}/s burst {burst}")
    if k.daily_quota is not None:
        parts.append(f"{k.used_today or 0}/{k.daily_quota} today")
    if k.weight != 1:
        parts.append(f"weight {k.weight}")
    return ", ".join(parts) or "no limits"


def config_lines(view: dict[str, Any]) -> list[str]:
    cfg = view["config"] or {}
    sizes = ",".join(str(s) for s in cfg.get("preferred_batch_sizes") or []) or "none"
    running = view.get("device") or "not loaded"
    if not cfg.get("device"):
        device = f"the server's device ({running})"
    elif view.get("device") and view["device"] != cfg["device"]:
        device = f"{running} ({cfg['device']} was asked for)"
    else:
        device = cfg["device"]
    lines = [f"{view['model']} v{view['version']} on {device}, instance_count {cfg.get('instance_count')}",
             *(f"warning: {w}" for w in view.get("warnings") or []),
             f"batching: max_batch_size {cfg.get('max_batch_size')}, max_queue_delay_us "
             f"{cfg.get('max_queue_delay_us')}, preferred_batch_sizes {sizes}, max_queue_size "
             f"{cfg.get('max_queue_size')}, default_timeout_us {cfg.get('default_timeout_us')}"]
    if cfg.get("batch_buckets"):
        lines.append("fixed batch shapes: " + ", ".join(str(b) for b in cfg["batch_buckets"])
                     + " (a session per size; a batch runs padded on the smallest that holds it)")
    card = view.get("performance")
    if card:
        lines.append(f"performance card ({card['device']}, latency budget {card['latency_budget_ms']:g} ms):")
        lines += [f"  batch {p['batch_size']}: {p['latency_ms']:g} ms, {p['throughput']:,.0f} rows/s"
                  for p in card["points"]]
        split = card.get("instances")
        if split:
            rates = split["throughput"]
            lines += [f"  at batch {split['batch_size']}: one instance of all the cores {rates['1']:,.0f} rows/s"
                      + "".join(f", {n} sharing them {r:,.0f} rows/s" for n, r in rates.items() if n != "1")]
        chosen = card.get("chosen") or {}
        lines.append(f"  auto-tune chose max_batch_size {chosen.get('max_batch_size')}, max_queue_delay_us "
                     f"{chosen.get('max_queue_delay_us')}"
                     + (f", instance_count {chosen['instance_count']}" if "instance_count" in chosen else ""))
    stats = view.get("stats")
    if stats:
        lines.append(f"live: {stats['requests']} requests in {stats['batches']} batches, {stats['queued']} queued, "
                     f"{stats['rejected']} rejected, {stats['timed_out']} timed out, {stats['failed']} failed")
    return lines


def alias_text(a: dict[str, Any]) -> str:
    if a.get("version") is not None:
        text = f"{a['alias']}\tv{a['version']}"
    else:
        text = f"{a['alias']}\t" + ", ".join(f"v{v} {w}%" for v, w in a["versions"].items())
    if a.get("guard"):
        text += "\tguard " + ",".join(f"{k}={v:g}" for k, v in a["guard"].items() if v is not None)
    if a.get("shadow"):
        text += f"\tshadow v{a['shadow']['version']} {a['shadow']['percent']:g}%"
    return text


def job_line(j: dict[str, Any]) -> str:
    version = f"v{j['resolved_version']}" if j["resolved_version"] else (j["version"] or "served")
    rate = f"\t{j['rows_per_s']} rows/s, ETA {j['eta_s']} s" if j["rows_per_s"] else ""
    return (f"{j['id']}\t{j['state']}\t{j['model']} {version}\t{j['rows_done']}/{j['rows_total']} rows"
            f" ({j['rows_bad']} bad){rate}")


class Bars:
    """A flashml.client progress callback drawn as click progress bars on standard error, one per stage
    ("Hashing model.onnx", "Uploading model.onnx"); use it in a ``with`` block."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.stage: str | None = None
        self.bar: Any = None
        self.done = 0

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        if stage != self.stage:
            self.close()
            self.stage, self.done = stage, 0
            if total is not None:
                self.bar = click.progressbar(length=total, label=f"{stage.capitalize()} {self.name}", file=sys.stderr)
                self.bar.__enter__()
        if self.bar is not None:
            self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None

    def __enter__(self) -> Bars:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
