"""Moved to tests/helpers/s3_server.py. This name stays only because tests/security/ still imports it
(the layout test allows that and nothing else); drop it once tests/security/ imports tests.helpers.s3_server."""

from tests.helpers.s3_server import *  # noqa: F403
