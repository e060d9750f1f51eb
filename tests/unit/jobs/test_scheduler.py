"""Schedule triggers: cron expressions and intervals in time zones, parsed without waiting for them."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from flashml.errors import BadRequestError
from flashml.jobs.scheduler import crontab_weekdays, make_trigger

UTC = ZoneInfo("UTC")


def test_cron_fires_at_its_local_time():
    trigger = make_trigger("30 2 * * 1-5", None, "Europe/Paris")
    first = trigger.get_next_fire_time(None, datetime(2026, 7, 3, 12, 0, tzinfo=UTC))  # a Friday
    assert first.isoformat() == "2026-07-06T02:30:00+02:00"  # Monday, summer time in Paris
    winter = trigger.get_next_fire_time(None, datetime(2026, 1, 1, 0, 0, tzinfo=UTC))
    assert winter.isoformat() == "2026-01-01T02:30:00+01:00"


@pytest.mark.parametrize(("field", "names"), [
    ("1-5", "mon,tue,wed,thu,fri"), ("0", "sun"), ("7", "sun"), ("*/2", "sun,tue,thu,sat"), ("sat,0", "sat,sun"),
    ("*", "*"), ("5/1", "fri,sat"),
])
def test_crontab_day_numbers_mean_what_crontab_means(field, names):
    assert crontab_weekdays(field) == names


def test_interval_and_utc_default():
    trigger = make_trigger(None, 90, "")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    nxt = trigger.get_next_fire_time(None, start)
    assert (trigger.get_next_fire_time(nxt, nxt) - nxt).total_seconds() == 90


@pytest.mark.parametrize(("cron", "interval", "tz", "code"), [
    ("* * *", None, "UTC", "bad_cron"),
    ("61 * * * *", None, "UTC", "bad_cron"),
    ("0 2 * * *", 60, "UTC", "bad_schedule"),
    (None, None, "UTC", "bad_schedule"),
    (None, 0.5, "UTC", "bad_interval"),
    (None, "60", "UTC", "bad_interval"),
    ("0 2 * * *", None, "Mars/Olympus", "bad_timezone"),
    ("0 2 * * 8", None, "UTC", "bad_cron"),
])
def test_bad_schedules_are_400(cron, interval, tz, code):
    with pytest.raises(BadRequestError) as err:
        make_trigger(cron, interval, tz)
    assert err.value.code == code
