"""The image's HEALTHCHECK: exit 0 when the server in this container answers /v2/health/ready with 200.

Plain HTTP, or HTTPS when FLASHML_TLS_CERTIFICATE is set (the certificate names the public host, not loopback,
so it is not verified here); the port from FLASHML_PORT. Standard library only: it runs in a fresh interpreter
every 30 s.
"""

import os
import ssl
import sys
import urllib.request

scheme = "https" if os.environ.get("FLASHML_TLS_CERTIFICATE") else "http"
url = f"{scheme}://127.0.0.1:{os.environ.get('FLASHML_PORT', '8000')}/v2/health/ready"
try:
    with urllib.request.urlopen(url, timeout=4, context=ssl._create_unverified_context()) as answer:
        sys.exit(0 if answer.status == 200 else 1)
except OSError as exc:
    print(f"not ready: {exc}", file=sys.stderr)
    sys.exit(1)
