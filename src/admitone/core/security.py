"""Secrets: organizer API keys, buyer tokens and HMAC signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

API_KEY_PREFIX = "adm"
# read: every organizer key reads; write: change data; checkin: admit tickets at the door (and read).
SCOPES = ("read", "write", "checkin")


def new_api_key() -> tuple[str, str, str]:
    """A fresh key as ``(full_key, lookup_prefix, hash)``; only the hash and prefix are stored."""
    prefix = secrets.token_hex(6)
    key = f"{API_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    return key, prefix, hash_secret(key)


def split_api_key(key: str) -> str | None:
    """The lookup prefix of a well-formed key, else None."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX or len(parts[1]) != 12:
        return None
    if not all(c in "0123456789abcdef" for c in parts[1]):
        return None
    return parts[1]


def hash_secret(value: str) -> str:
    # Keys and tokens carry 256 random bits, so a fast hash is enough; no salt or stretching needed.
    return hashlib.sha256(value.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def new_token(prefix: str, nbytes: int = 24) -> str:
    return f"{prefix}_{secrets.token_urlsafe(nbytes)}"


def order_access_token(secret_key: str, order_id: str) -> str:
    """The buyer's access token of an order: HMAC-SHA256 of its id under a key derived from the secret key.

    Derived rather than random, so that the confirmation e-mail (sent later, by another process) can link
    to the order page with it; the database still keeps only its hash. As unguessable as the secret key.
    """
    key = hmac.new(secret_key.encode(), b"admitone order access v1", hashlib.sha256).digest()
    digest = hmac.new(key, order_id.encode(), hashlib.sha256).digest()[:24]
    return base64.urlsafe_b64encode(digest).decode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """HMAC-SHA256 over ``"<timestamp>." + body``, hex."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return mac.hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    ts = int(time.time()) if timestamp is None else timestamp
    return f"t={ts},v1={sign(secret, ts, body)}"


def verify_signature(secret: str, header: str | None, body: bytes, tolerance: int = 300) -> bool:
    """Checks a ``t=...,v1=...`` header: right MAC and a timestamp within ``tolerance`` seconds."""
    if not header:
        return False
    fields: dict[str, str] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        fields[name] = value
    try:
        ts = int(fields.get("t", ""))
    except ValueError:
        return False
    if abs(time.time() - ts) > tolerance:
        return False
    return same(sign(secret, ts, body), fields.get("v1", ""))
