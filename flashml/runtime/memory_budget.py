"""The memory budget per device (setting ``memory_budget``): how much loaded versions may hold on each.

``""``: no budget. ``"8GiB"``: every device gets 8 GiB. ``"cpu=8GiB, cuda:0=20GiB"``: per device (a device
not named has no budget). Sizes are bytes, or a number with KiB, MiB or GiB.
"""

from __future__ import annotations

import re

ANY = "*"
UNITS = {"": 1, "b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3}
SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str) -> int:
    match = SIZE.match(text)
    unit = match[2].lower() if match else ""
    if not match or unit not in UNITS:
        raise ValueError(f"{text.strip()!r} is not a size: bytes, or a number with KiB, MiB or GiB")
    return int(float(match[1]) * UNITS[unit])


def parse_budget(text: str) -> dict[str, int]:
    """Device -> bytes (``ANY``: every device); raises ValueError with a sentence for a bad value."""
    text = text.strip()
    if not text:
        return {}
    if "=" not in text:
        return {ANY: parse_size(text)}
    out: dict[str, int] = {}
    for part in text.split(","):
        device, _, size = (p.strip() for p in part.partition("="))
        if not re.match(r"^(cpu|cuda(:[0-9]+)?)$", device):
            raise ValueError(f"{device!r} is not a device: cpu, cuda or cuda:N")
        out[device] = parse_size(size)
    return out


def budget_for(budgets: dict[str, int], device: str) -> int | None:
    if device in budgets:
        return budgets[device]
    if device == "cuda:0" and "cuda" in budgets:
        return budgets["cuda"]
    return budgets.get(ANY)
