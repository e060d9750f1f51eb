"""FlashML against the peers, from bench.run's figures: the ratios, and whether the target holds.

The target: FlashML ahead of both peers at every client count on both models, with JSON and with binary
tensors (MLServer speaks JSON only, so it is compared with JSON only).
"""

from __future__ import annotations

# (label, FlashML's series, the peer's series): each compares the same bodies.
COMPARISONS = (
    ("FlashML/Triton, JSON", "flashml", "pytriton"),
    ("FlashML/Triton, binary", "flashml_binary", "pytriton_binary"),
    ("FlashML/MLServer, JSON", "flashml", "mlserver"),
)
# What bench.run measures of each peer, and with which body.
SERIES = {"pytriton": (("pytriton", "json"), ("pytriton_binary", "binary")), "mlserver": (("mlserver", "json"),)}
LABELS = {"pytriton": "PyTriton (Triton's core)", "pytriton_binary": "PyTriton, binary tensors",
          "mlserver": "MLServer"}


def ratios(models: dict) -> list[dict]:
    """One row per model, client count and comparison whose peer was measured: FlashML's req/s over the peer's."""
    rows = []
    for model, row in models.items():
        for label, ours, theirs in COMPARISONS:
            for clients, peer in (row.get(theirs) or {}).items():
                mine = row[ours][clients] if clients in row[ours] else row[ours][str(clients)]
                rows.append({"model": model, "clients": int(clients), "comparison": label,
                             "flashml_rps": mine["rps"], "peer_rps": peer["rps"],
                             "ratio": mine["rps"] / peer["rps"] if peer["rps"] else float("inf")})
    return rows


def verdict(rows: list[dict]) -> str:
    """One sentence: the target holds, does not hold (and where not), or could not be judged."""
    if not rows:
        return "Target not judged: no peer was measured."
    missing = sorted({label for label, _, _ in COMPARISONS} - {r["comparison"] for r in rows})
    behind = [r for r in rows if r["ratio"] <= 1.0]
    if behind:
        where = "; ".join(f"{r['model']} at {r['clients']} clients, {r['comparison']} {r['ratio']:.2f}"
                          for r in behind)
        return f"Target does not hold: FlashML is not ahead on {where}."
    if missing:
        return f"FlashML ahead wherever measured, but the target is not judged: {', '.join(missing)} not measured."
    return "Target holds: FlashML ahead of both peers at every client count on every model, JSON and binary."


def table(rows: list[dict]) -> str:
    """A Markdown table: one line per model and client count, one column per comparison."""
    labels = [label for label, _, _ in COMPARISONS]
    cells = {(r["model"], r["clients"], r["comparison"]): r["ratio"] for r in rows}
    keys = sorted({(r["model"], r["clients"]) for r in rows}, key=lambda k: (list(dict.fromkeys(
        r["model"] for r in rows)).index(k[0]), k[1]))
    lines = ["| model | clients | " + " | ".join(labels) + " |", "|---|---|" + "---|" * len(labels)]
    for model, clients in keys:
        values = [cells.get((model, clients, label)) for label in labels]
        lines.append(f"| {model} | {clients} | "
                     + " | ".join("-" if v is None else f"{v:.2f}" for v in values) + " |")
    return "\n".join(lines)
