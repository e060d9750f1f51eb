"""The console's Upload page with S3 storage: a big file goes in parts straight to the store (moto)."""

from __future__ import annotations

import hashlib

import pytest

from tests.helpers.browser import sign_in_as_new_user
from tests.helpers.s3 import Moto, objects, s3_server
from tests.helpers.uploads import big_bundle

pytestmark = pytest.mark.server


def test_console_sends_a_big_bundle_in_parts_to_s3(tmp_path, page):  # noqa: F811
    (tmp_path / "big.tar.gz").write_bytes(big_bundle(tmp_path))
    size = (tmp_path / "big.tar.gz").stat().st_size
    moto = Moto().start()
    srv = s3_server(tmp_path / "data", moto, "--upload-part-bytes", str(5 << 20)).start()
    puts: list[str] = []
    asked: list[dict] = []
    page.on("request", lambda r: puts.append(r.url) if r.method == "PUT" else None)
    page.on("request", lambda r: asked.append(r.post_data_json) if r.url.endswith("/api/v1/uploads") else None)
    try:
        sign_in_as_new_user(page, srv, "s3-maintainer", "maintainer", "/upload")
        page.get_by_label("Model name").fill("console-s3")
        page.get_by_label("Model file").set_input_files(str(tmp_path / "big.tar.gz"))
        page.get_by_role("button", name="Upload").click()
        link = page.locator("#model-link")
        link.wait_for(timeout=120_000)
        assert page.inner_text("#upload-bytes").startswith("11.")  # about 11 MB, all of it
        assert page.evaluate("(() => { const p = document.getElementById('upload-progress');"
                             " return p.value === p.max && p.max > 0; })()")
        page.shots("ready")
        # three parts, each PUT straight to the store, none through FlashML
        assert len(puts) == 3 and all(u.startswith(f"http://{moto.endpoint}/") and "uploadId=" in u for u in puts)
        assert "site-a/uploads/s3-maintainer/console-s3-v1.tar.gz" in objects(moto)
        digest = hashlib.sha256((tmp_path / "big.tar.gz").read_bytes()).hexdigest()
        assert asked == [{"model": "console-s3", "filename": "big.tar.gz", "size": size, "sha256": digest}]
        version = page.request.get(f"{srv.url}/api/v1/models/console-s3/versions/1").json()
        assert version["state"] == "ready" and version["size_bytes"] == size
    finally:
        srv.stop()
        moto.stop()
