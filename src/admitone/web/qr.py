"""Ticket codes drawn as QR codes, in SVG."""

from __future__ import annotations

import io

import segno


def ticket_svg(code: str, title: str) -> bytes:
    """The code as a scalable SVG QR code (a ``viewBox`` and no fixed size), with a quiet zone.

    Error correction level M keeps a printed or slightly cracked phone screen readable. CPU-bound:
    call it off the event loop.
    """
    qr = segno.make(code, error="m", micro=False)
    out = io.BytesIO()
    qr.save(
        out,
        kind="svg",
        scale=1,
        border=4,
        xmldecl=False,
        omitsize=True,
        title=title,
        dark="#000",
        light="#fff",
    )
    return out.getvalue()
