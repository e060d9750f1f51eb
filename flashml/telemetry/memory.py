"""Memory readings without psutil: the resident set size of this process, from /proc."""

from __future__ import annotations

import os

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int | None:
    """This process's resident memory now, in bytes; None where /proc is missing (not Linux)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


def growth(before: int | None, after: int | None) -> int | None:
    """RSS growth between two readings (never negative: freed memory elsewhere is not a model's)."""
    if before is None or after is None:
        return None
    return max(0, after - before)
