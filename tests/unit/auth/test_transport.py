"""Which peers' X-Forwarded-* headers are believed: addresses and networks from the setting trusted_proxies."""

from __future__ import annotations

from flashml.auth.transport import peer_is_trusted


def test_addresses_and_networks_match():
    trusted = ("10.0.0.0/8", "192.168.1.5", "::1")
    assert peer_is_trusted("10.1.2.3", trusted) and peer_is_trusted("192.168.1.5", trusted)
    assert peer_is_trusted("::1", trusted)
    assert not peer_is_trusted("192.168.1.6", trusted) and not peer_is_trusted("11.0.0.1", trusted)


def test_nothing_is_trusted_by_default_or_by_mistake():
    assert not peer_is_trusted("127.0.0.1", ())
    assert not peer_is_trusted("127.0.0.1", ("",))  # an empty setting from the environment
    assert not peer_is_trusted("127.0.0.1", ("not-an-address",))
    assert not peer_is_trusted(None, ("0.0.0.0/0",)) and not peer_is_trusted("", ("0.0.0.0/0",))
