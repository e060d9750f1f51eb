"""The doctor's checks of the network side: the listen address (free, or held by a FlashML that answers), clear
text beyond loopback, the TLS files (readable, a certificate in date and the key that goes with it)."""

from __future__ import annotations

import datetime as dt
import errno
import socket
import stat
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from flashml.ops.doctor import Check, fail, ok, warn
from flashml.settings import Settings
from flashml.startup_checks import exposure_warning

EXPIRY_WARNING_DAYS = 30


def network_checks(settings: Settings, timeout_s: float) -> list[Check]:
    return [_exposure_check(settings), *_tls_checks(settings), *_listen_checks(settings, timeout_s)]


def _exposure_check(settings: Settings) -> Check:
    warning = exposure_warning(settings)
    if warning:
        return warn("exposure", " ".join(warning.replace("WARNING: ", "").split()))
    if settings.tls_certificate:
        how = "over HTTPS (its own TLS)"
    elif settings.trusted_proxies:
        how = f"behind the trusted proxies {', '.join(settings.trusted_proxies)}"
    else:
        how = "on this machine only (loopback)"
    return ok("exposure", f"FlashML listens on {settings.host}:{settings.port} {how}.")


def _tls_checks(settings: Settings) -> list[Check]:
    if not settings.tls_certificate:
        return []
    cert_path = Path(settings.tls_certificate).expanduser()
    key_path = Path(settings.tls_key).expanduser()
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError) as exc:
        return [fail("tls_certificate", f"{cert_path} is not a readable PEM certificate ({_reason(exc)}): the "
                                        "server cannot serve HTTPS with it.")]
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except TypeError:
        return [_certificate_check(cert, cert_path),
                fail("tls_key", f"{key_path} is encrypted with a passphrase: the server cannot unlock it. Write it "
                                "unencrypted (openssl pkey -in KEY -out KEY.plain) and keep it private (chmod 600).")]
    except (OSError, ValueError) as exc:
        return [_certificate_check(cert, cert_path),
                fail("tls_key", f"{key_path} is not a readable PEM private key ({_reason(exc)}).")]
    return [_certificate_check(cert, cert_path), _key_check(cert, key, key_path)]


def _reason(exc: Exception) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).split("\n")[0]


def _certificate_check(cert: x509.Certificate, path: Path) -> Check:
    now = dt.datetime.now(dt.UTC)
    subject = cert.subject.rfc4514_string() or "an empty subject"
    until = cert.not_valid_after_utc
    if until <= now:
        return fail("tls_certificate", f"the certificate {path} ({subject}) expired on {until:%Y-%m-%d %H:%M} UTC: "
                                       "browsers and clients refuse it. Renew it.")
    if cert.not_valid_before_utc > now:
        return fail("tls_certificate", f"the certificate {path} ({subject}) is not valid before "
                                       f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC (is the clock right?).")
    days = (until - now).days
    if days < EXPIRY_WARNING_DAYS:
        return warn("tls_certificate", f"the certificate {path} ({subject}) expires in {days} days "
                                       f"({until:%Y-%m-%d}): renew it soon.")
    return ok("tls_certificate", f"the certificate {path} ({subject}) is valid until {until:%Y-%m-%d} "
                                 f"({days} days).")


def _key_check(cert: x509.Certificate, key, path: Path) -> Check:
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.DER
    if key.public_key().public_bytes(encoding, public) != cert.public_key().public_bytes(encoding, public):
        return fail("tls_key", f"{path} is not the key of the certificate: the server cannot serve HTTPS with the "
                               "pair. Name the key the certificate was made for.")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return warn("tls_key", f"{path} goes with the certificate but other users may read it (mode {mode:04o}): "
                               f"run chmod 600 {path}.")
    return ok("tls_key", f"{path} goes with the certificate and is private.")


def connect_host(host: str) -> str:
    """Where to reach a server listening on ``host``: every address means this machine's loopback."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host.strip("[]") == "::":
        return "::1"
    return host.strip("[]")


def server_url(settings: Settings) -> str:
    host = connect_host(settings.host)
    scheme = "https" if settings.tls_certificate else "http"
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{settings.port}"


def _listen_checks(settings: Settings, timeout_s: float) -> list[Check]:
    """Whether ``host:port`` is free to listen on, and what answers there when it is not."""
    where = f"{settings.host}:{settings.port}"
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    try:
        with socket.create_server((settings.host, settings.port), family=family, reuse_port=False):
            pass
    except socket.gaierror as exc:
        return [fail("listen", f"{settings.host} is not an address this machine can listen on ({exc.strerror}).")]
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return [_running_server(settings, timeout_s)]
        if exc.errno == errno.EADDRNOTAVAIL:
            return [fail("listen", f"{settings.host} is not an address of this machine: flashml serve cannot "
                                   "listen there. Use one of its addresses, 0.0.0.0 (all) or 127.0.0.1.")]
        return [fail("listen", f"flashml serve cannot listen on {where}: {exc.strerror or exc}"
                               + (" (ports below 1024 need privileges)" if exc.errno == errno.EACCES else "") + ".")]
    return [ok("listen", f"{where} is free: flashml serve can listen there."),
            warn("server", f"no server answers at {server_url(settings)}: FlashML is not running with these "
                           "settings. Start it (flashml serve, or systemctl start flashml).")]


def _running_server(settings: Settings, timeout_s: float) -> Check:
    url = server_url(settings)
    try:
        with httpx.Client(base_url=url, timeout=timeout_s, verify=False) as client:
            meta = client.get("/v2")
            name = meta.json().get("name") if meta.status_code == 200 else None
            if name != "flashml":
                return fail("server", f"something other than FlashML holds {url} (GET /v2 answered "
                                      f"{meta.status_code}): flashml serve cannot listen there. Stop that program or "
                                      "pick another port (--port).")
            ready = client.get("/v2/health/ready")
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        return fail("server", f"something holds {url} but does not answer FlashML's HTTP ({type(exc).__name__}): "
                              "flashml serve cannot listen there. Stop that program or pick another port (--port).")
    version = meta.json().get("version", "?")
    if ready.status_code != 200:
        return warn("server", f"FlashML {version} answers at {url} but is not ready ({ready.status_code}): it may "
                              "still be starting; look at its log.")
    return ok("server", f"FlashML {version} answers at {url} and is ready.")
