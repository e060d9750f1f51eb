"""The browser tests. tests/security/test_browser_csp.py still imports `Shots` and the `browser` fixture from here
(the layout test allows that and nothing else); drop these names once it takes them from tests.helpers.browser and
a conftest."""

from tests.browser.conftest import browser
from tests.helpers.browser import Shots

__all__ = ["Shots", "browser"]
