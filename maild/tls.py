"""TLS for the servers maild connects to (the IMAP mailbox, the smarthost): certificates are always verified."""

from __future__ import annotations

import ssl
from pathlib import Path


def client_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """Verifies the server's certificate and name against the system's CAs and, when given, those in the PEM
    file ``ca_file`` too: a private CA, or a server's own self-signed certificate. Raises OSError or
    ssl.SSLError when that file cannot be read as certificates."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_file is not None:
        context.load_verify_locations(cafile=ca_file)
    return context
