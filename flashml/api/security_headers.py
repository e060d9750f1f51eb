"""Security headers on every answer: no MIME sniffing, no framing, no referrer to other sites, a strict CSP.

Console pages get a Content-Security-Policy that allows our own files only: no inline script or style, no
eval (htmx is configured for it in ``base.html``), so an injected tag or attribute runs nothing. Every other
answer (JSON, files, static assets) gets ``default-src 'none'``: nothing it could be rendered as may load or
run anything. HSTS goes out only when the browser reached us over HTTPS, directly (``tls_certificate``) or
through a trusted proxy: sent over plain HTTP it would be ignored, and a server without TLS must not ask for it.

Litestar's answers get them from ``security_headers_hook`` (a before-send hook: routes, errors, static files
alike); the RSGI fast path for V2 inference (``flashml.server``) adds ``fast_path_headers`` itself.
"""

from __future__ import annotations

from typing import Any

from flashml.auth.transport import peer_is_trusted
from flashml.settings import Settings

# Referrer-Policy same-origin: our own pages still see where a form came from (the error page's way back),
# and no URL (a model's name, a job id, the setup link's token) ever reaches another site.
COMMON = (("x-content-type-options", "nosniff"), ("referrer-policy", "same-origin"), ("x-frame-options", "DENY"))
NOT_A_PAGE_POLICY = "default-src 'none'; frame-ancestors 'none'"
HSTS = ("strict-transport-security", "max-age=31536000")  # one year, what browsers' preload lists ask for


def page_policy(settings: Settings) -> str:
    """The console's CSP. With the S3 store the upload page sends the file straight to the store's presigned
    URLs, so that origin joins connect-src; nothing else outside the server is ever loaded."""
    connect = "'self'"
    if settings.storage == "s3" and settings.s3_endpoint:
        connect += f" {'https' if settings.s3_secure else 'http'}://{settings.s3_endpoint}"
    return ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
            f"connect-src {connect}; object-src 'none'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'")


def fast_path_headers(https: bool) -> list[tuple[str, str]]:
    """The headers of a non-page answer, as RSGI takes them (``flashml.server`` computes both lists once)."""
    return [*COMMON, ("content-security-policy", NOT_A_PAGE_POLICY), *([HSTS] if https else [])]


def forwarded_https(forwarded_proto: str | None, peer: str | None, trusted_proxies: tuple[str, ...]) -> bool:
    """True when a trusted proxy says the browser came over HTTPS (the value it added is the last one)."""
    if not forwarded_proto or not trusted_proxies or not peer_is_trusted(peer, trusted_proxies):
        return False
    return forwarded_proto.split(",")[-1].strip().lower() == "https"


def _encoded(pairs: Any) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in pairs]


def security_headers_hook(settings: Settings):
    """Litestar's ``before_send`` hook that adds the headers to every answer's start message."""
    common = _encoded(COMMON)
    page = (b"content-security-policy", page_policy(settings).encode("latin-1"))
    not_a_page = (b"content-security-policy", NOT_A_PAGE_POLICY.encode("latin-1"))
    hsts = _encoded([HSTS])[0]
    trusted = tuple(settings.trusted_proxies)

    def https(scope: Any) -> bool:
        if scope.get("scheme") == "https":
            return True
        if not trusted:
            return False
        proto = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"x-forwarded-proto"), None)
        client = scope.get("client")
        return forwarded_https(proto, client[0] if client else None, trusted)

    async def add_security_headers(message: Any, scope: Any) -> None:
        if message["type"] != "http.response.start":
            return
        headers = list(message.get("headers") or ())
        names = {k.lower() for k, _ in headers}
        content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
        extra = [*common, page if content_type.startswith(b"text/html") else not_a_page]
        if https(scope):
            extra.append(hsts)
        headers.extend(pair for pair in extra if pair[0] not in names)  # a route's own choice stands
        message["headers"] = headers

    return add_security_headers
