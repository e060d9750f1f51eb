"""How the commands print records: one line per key, job or alias, and a version's serving config."""

from __future__ import annotations

import math
from typing import Any

from flashml.auth.records import KeyRecord


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
