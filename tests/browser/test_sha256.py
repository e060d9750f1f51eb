"""static/sha256.js (the console's streaming SHA-256) agrees with hashlib at every padding edge and slice edge."""

from __future__ import annotations

import hashlib

import pytest

from tests.helpers.browser import sign_in_as_new_user

pytestmark = pytest.mark.server

SIZES = [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 4 * 1024 * 1024, 4 * 1024 * 1024 + 70]


def test_streaming_sha256_matches_hashlib(server, page):  # noqa: F811
    sign_in_as_new_user(page, server, "sha-maintainer", "maintainer", "/upload")
    page.wait_for_function("() => typeof window.flashmlSha256 === 'function'")
    got = page.evaluate("""async (sizes) => {
        const out = [];
        for (const n of sizes) {
            const bytes = new Uint8Array(n);
            for (let i = 0; i < n; i++) bytes[i] = (i * 31 + 7) & 255;
            out.push(await window.flashmlSha256(new File([bytes], "x.bin")));
        }
        return out;
    }""", SIZES)
    want = [hashlib.sha256(bytes((i * 31 + 7) & 255 for i in range(n))).hexdigest() for n in SIZES]
    assert got == want
