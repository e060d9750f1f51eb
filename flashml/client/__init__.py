"""flashml.client: the public, typed Python client of a FlashML server's management API.

    from flashml.client import Client

    with Client("http://127.0.0.1:8000", key) as fml:
        for model in fml.list_models():
            print(model.name, model.latest_ready)

Answers are msgspec records (``record.to_dict()`` gives plain JSON values); a failed call raises ClientError with
the server's status, machine-readable code, sentence and request id. ``resolve_connection`` finds the server and
key as the ``flashml`` command does: a flag, then FLASHML_SERVER / FLASHML_KEY, then a profile. Importing this
package loads no part of the server (no ONNX Runtime, Litestar or SQLAlchemy).
"""

from flashml.auth.records import UserRecord
from flashml.client.client import Client
from flashml.client.connection import DEFAULT_SERVER, Connection, load_profiles, profiles_path, resolve_connection
from flashml.client.errors import ClientError
from flashml.client.records import MetricsReport, MetricsSummary
from flashml.client.transport import Progress

__all__ = ["DEFAULT_SERVER", "Client", "ClientError", "Connection", "MetricsReport", "MetricsSummary", "Progress",
           "UserRecord", "load_profiles", "profiles_path", "resolve_connection"]
