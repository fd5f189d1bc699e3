"""What a ticket's QR code carries: a signed payload a door scanner can verify without the database.

Format: ``AT1.<event id>.<ticket id>.<ticket code>.<signature>``, where the signature is the first 16 bytes
of HMAC-SHA256 over everything before the last dot, base64url without padding. The key is derived from
the deployment's secret key for this purpose only. Short enough for a QR code of version 5-6 at level M.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

PREFIX = "AT1"


def ticket_signing_key(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode(), b"admitone ticket signatures v1", hashlib.sha256).digest()


def _signature(key: bytes, body: str) -> str:
    digest = hmac.new(key, body.encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_ticket(key: bytes, event_id: int, ticket_id: int, code: str) -> str:
    """The QR payload of a ticket."""
    body = f"{PREFIX}.{event_id}.{ticket_id}.{code}"
    return f"{body}.{_signature(key, body)}"


@dataclass(frozen=True)
class TicketClaim:
    event_id: int
    ticket_id: int
    code: str


def verify_ticket(key: bytes, payload: str) -> TicketClaim | None:
    """The claim of a genuine payload; None for anything forged, altered or malformed."""
    parts = payload.strip().split(".")
    if len(parts) != 5 or parts[0] != PREFIX:
        return None
    prefix, event_id, ticket_id, code, signature = parts
    if (
        not (event_id.isascii() and event_id.isdigit() and ticket_id.isascii() and ticket_id.isdigit())
        or not code
        or len(event_id) > 12
        or len(ticket_id) > 12
    ):
        return None
    body = f"{prefix}.{event_id}.{ticket_id}.{code}"
    # Bytes: compare_digest refuses str with non-ASCII characters, and a scanner may send anything.
    if not hmac.compare_digest(_signature(key, body).encode(), signature.encode()):
        return None
    return TicketClaim(int(event_id), int(ticket_id), code)
