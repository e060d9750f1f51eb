"""Moved to tests/helpers/in_process.py. This name stays only because tests/security/ still imports it
(the layout test allows that and nothing else); drop it once tests/security/ imports tests.helpers.in_process."""

from tests.helpers.in_process import *  # noqa: F403
