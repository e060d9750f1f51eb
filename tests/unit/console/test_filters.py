"""The console's Jinja filters (flashml/console/filters.py): one way to write a time, a size, a duration and a latency,
and the engine of the app has them."""

from __future__ import annotations

import calendar
import re
from pathlib import Path

import pytest
from litestar.plugins.jinja import JinjaTemplateEngine

import flashml.console
from flashml.console.filters import FILTERS, duration, ms, percent, register_filters, shape, size, utc
from flashml.paths import TEMPLATES_DIR

T = calendar.timegm((2026, 12, 4, 9, 5, 7))  # 2026-12-04 09:05:07 UTC


def test_utc_times():
    assert utc(T) == "2026-12-04 09:05:07 UTC"
    assert utc(T + 0.9) == "2026-12-04 09:05:07 UTC"  # fractions of a second are cut, not rounded
    assert utc(T, date=False) == "09:05:07 UTC"
    assert utc(T, date=False, seconds=False) == "09:05 UTC"
    assert utc(None) == "" and utc(None, "never") == "never" and utc(0, "an unknown date") == "an unknown date"


@pytest.mark.parametrize(("n", "text"), [(0, "0 bytes"), (1023, "1023 bytes"), (1024, "1.0 KiB"), (1536, "1.5 KiB"),
                                         (5 * 2**20, "5.0 MiB"), (3 * 2**30, "3.0 GiB"), (2**42, "4096.0 GiB")])
def test_sizes(n, text):
    assert size(n) == text


def test_sizes_in_a_fixed_unit_and_missing():
    assert size(512 * 1024, unit="MiB") == "0.5 MiB" and size(3 * 2**30, unit="MiB") == "3072.0 MiB"
    assert size(None) == "unknown" and size(None, "not measured", unit="MiB") == "not measured"


@pytest.mark.parametrize(("seconds", "text"), [(0, "0 s"), (44.6, "45 s"), (200, "3 min 20 s"),
                                               (2 * 3600 + 5 * 60 + 9, "2 h 5 min"), (28 * 3600, "1 d 4 h"),
                                               (-3, "0 s"), (None, "–")])
def test_durations(seconds, text):
    assert duration(seconds) == text


def test_latencies_percentages_and_shapes():
    assert [ms(0.4234), ms(12.34), ms(250.4), ms(None)] == ["0.42 ms", "12.3 ms", "250 ms", "–"]
    assert percent(2 / 7) == "28.6 %" and percent(0) == "0.0 %"
    assert shape([-1, 3, 224, 224]) == "[any, 3, 224, 224]"


def test_the_template_engine_has_every_filter():
    engine = JinjaTemplateEngine(directory=TEMPLATES_DIR)
    register_filters(engine)
    text = engine.render_string("{{ t | utc('never') }}, {{ n | size }}, {{ s | duration }}, {{ m | ms }}",
                                {"t": T, "n": 2048, "s": 75, "m": 3.21})
    assert text == "2026-12-04 09:05:07 UTC, 2.0 KiB, 1 min 15 s, 3.2 ms"
    assert set(FILTERS) <= set(engine.engine.filters)


# Formatting by hand: the time module, binary units, or a helper called like a function instead of a filter.
BY_HAND = re.compile(r"strftime|gmtime|KiB|2\*\*20|(?<!\| )\b(when|_when|size|mib|ms|minute|duration|percent|shape)\(")


def test_no_console_module_or_template_formats_times_or_sizes_itself():
    """The ad-hoc formatters the filters replaced stay gone: every console module and template uses the filters."""
    console = Path(flashml.console.__file__).parent
    for path in [*console.glob("*.py"), *TEMPLATES_DIR.glob("*.html")]:
        if path.name != "filters.py":
            found = BY_HAND.search(path.read_text())
            assert found is None, f"{path.name} formats {found.group(0)!r} by hand: use flashml/console/filters.py"
