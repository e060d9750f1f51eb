"""The metric names a PromQL expression reads, found by reading PromQL's grammar rather than by a pattern.

A name is an identifier that is not a function or aggregation (those are followed by ``(``), not a keyword or a
label (label matchers in ``{...}``, grouping lists after ``by``, ``without``, ``on``, ``ignoring``,
``group_left``, ``group_right``), not inside a string, a range or a subquery (``[5m]``, ``[$__rate_interval]``),
and not a Grafana variable (``$model``); ``{__name__="x"}`` names ``x``. Enough PromQL for dashboards, checked
against tricky cases by tests/project/test_grafana_dashboard.py.
"""

from __future__ import annotations

import re

_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_NUMBER = re.compile(r"(0x[0-9a-fA-F]+|[0-9][0-9a-zA-Z_.]*(e[+-]?[0-9]+)?|\.[0-9]+)")  # 0.5, 1e6, 5m, 1h30m
_GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_KEYWORDS = _GROUPING | frozenset({"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "Inf", "NaN"})
# Aggregations may put their grouping first: sum by (le) (rate(x[5m])).
_AGGREGATIONS = frozenset({"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
                           "bottomk", "topk", "quantile", "limitk", "limit_ratio"})
_CLOSING = {"(": ")", "[": "]", "{": "}"}


def _string_end(expr: str, start: int) -> int:
    """Index just past the string that opens at ``start`` ("...", '...' with escapes; `...` raw)."""
    quote, i = expr[start], start + 1
    while i < len(expr):
        if expr[i] == "\\" and quote != "`":
            i += 2
            continue
        if expr[i] == quote:
            return i + 1
        i += 1
    raise ValueError(f"unterminated string in {expr!r}")


def _group_end(expr: str, start: int) -> int:
    """Index just past the bracket that opens at ``start`` and its contents (strings inside are skipped)."""
    depth, i = 0, start
    while i < len(expr):
        c = expr[i]
        if c in "\"'`":
            i = _string_end(expr, i)
            continue
        if c in _CLOSING:
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError(f"unbalanced {expr[start]} in {expr!r}")


def _matcher_names(body: str) -> list[str]:
    """Names given as ``__name__="x"`` (or =~ with a plain name) inside one ``{...}``."""
    return [m.group(2) for m in re.finditer(r"__name__\s*(=~?)\s*[\"'`]([A-Za-z_:][A-Za-z0-9_:]*)[\"'`]", body)]


def metric_names(expr: str) -> list[str]:
    """Every metric name ``expr`` selects, in order (repeats kept)."""
    names: list[str] = []
    i = 0
    while i < len(expr):
        c = expr[i]
        if c.isspace() or c in "()+-*/%^=!<>,":
            i += 1
        elif c in "\"'`":
            i = _string_end(expr, i)
        elif c == "{":
            end = _group_end(expr, i)
            names += _matcher_names(expr[i:end])
            i = end
        elif c == "[":
            i = _group_end(expr, i)
        elif c == "$":  # a Grafana variable: $name, ${name}, [[name]] is covered by "["
            match = re.compile(r"\$(\{[^}]*\}|\w+)").match(expr, i)
            i = match.end() if match else i + 1
        elif c == "@":  # @ start(), @ 1609746000
            i += 1
        elif (number := _NUMBER.match(expr, i)) and not _IDENT.match(expr, i):
            i = number.end()
        elif ident := _IDENT.match(expr, i):
            word, i = ident.group(), ident.end()
            rest = expr[i:].lstrip()
            if word in _GROUPING and rest.startswith("("):
                i = _group_end(expr, len(expr) - len(rest))  # a list of labels, not of metrics
            elif word in _KEYWORDS or rest.startswith("(") or (
                    word in _AGGREGATIONS and re.match(r"(by|without)\b", rest)):
                continue  # a keyword, or a function or aggregation being called
            else:
                names.append(word)
        else:
            raise ValueError(f"unexpected {c!r} at {i} in {expr!r}")
    return names
