"""Did the browser reach us over HTTPS, and from which address? Directly, or through a trusted proxy.

``X-Forwarded-Proto`` and ``X-Forwarded-For`` count only when the peer's address is listed in the setting
``trusted_proxies``: anyone else could send them to pass plain HTTP off as encrypted, or to dodge the sign-in
brake with a made-up address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from litestar import Request


def peer_is_trusted(host: str | None, trusted_proxies: Iterable[str]) -> bool:
    """True when ``host`` is one of ``trusted_proxies`` (addresses or networks like 10.0.0.0/8)."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    for entry in trusted_proxies:
        entry = entry.strip()
        if not entry:
            continue
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def request_is_https(request: Request, trusted_proxies: Iterable[str]) -> bool:
    if request.url.scheme == "https":
        return True
    forwarded = request.headers.get("x-forwarded-proto", "")
    if not forwarded or not peer_is_trusted(request.client.host if request.client else None, trusted_proxies):
        return False
    return forwarded.split(",")[-1].strip().lower() == "https"  # the value our trusted peer added


def client_address(request: Request, trusted_proxies: Iterable[str]) -> str:
    """The browser's address, for the sign-in brake and the audit log: behind trusted proxies, the nearest
    ``X-Forwarded-For`` entry that is not one of them (entries further left could be made up by the client)."""
    return forwarded_client(request.client.host if request.client else "", request.headers.get("x-forwarded-for"),
                            trusted_proxies)


def forwarded_client(peer: str, forwarded_for: str | None, trusted_proxies: Iterable[str]) -> str:
    """``client_address`` from the raw parts: the peer's address and its ``X-Forwarded-For`` header (the access
    log has them before any Litestar request exists)."""
    if not peer_is_trusted(peer, trusted_proxies):
        return peer
    hops = [hop.strip() for hop in (forwarded_for or "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not peer_is_trusted(hop, trusted_proxies):
            return hop
    return hops[0] if hops else peer
