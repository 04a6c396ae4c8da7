"""Network exposure of the app: which interfaces it may bind, and how large a request may be.

- :func:`check_host`: the app binds to loopback by default. Any other interface (``0.0.0.0``,
  a LAN address, a host name) exposes a generator and a teacher to the network, so it needs
  ``allow_remote`` (CLI ``--allow-remote``); the app then asks for a password (Gradio's login,
  user ``darkgan``, a random token printed once at start-up) and prints a loud warning.
- :class:`BodyLimit`: an ASGI middleware that refuses request bodies over a size limit with
  HTTP 413 before they are read into memory: JSON bodies (every button and slider event) over
  :data:`MAX_JSON_BYTES`, any other body (uploads, multipart) over :data:`MAX_BODY_BYTES`.
  Chunked bodies (no ``Content-Length``) are read up to the limit before the app sees them.
"""
from __future__ import annotations

import ipaddress

from darkgan.errors import DarkGANError

#: Largest JSON request body (an event carries K = 128 slider values and a few fields: ~10 KB).
MAX_JSON_BYTES = 1 << 20
#: Largest request body of any kind: the upload limit (``state.MAX_UPLOAD_BYTES``, 20 MB) plus 1 MB.
MAX_BODY_BYTES = 21 << 20
#: The user name of the login asked for when the app is served beyond loopback.
REMOTE_USER = "darkgan"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback interface (``localhost``, ``127.0.0.0/8``, ``::1``)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # another host name: it may resolve to anything


def check_host(host: str, allow_remote: bool) -> str | None:
    """Check that serving on ``host`` is allowed; return the warning to print (None on loopback).

    Raises:
        DarkGANError: a non-loopback ``host`` without ``allow_remote``.
    """
    if is_loopback(host):
        return None
    if not allow_remote:
        raise DarkGANError(f"--host {host}: serving beyond this machine (loopback) exposes the app to the network; "
                           "add --allow-remote to do it on purpose (a login token is then required)")
    return (f"WARNING: the app is served on {host}, reachable from other machines. Anyone who can reach it and "
            f"has the token below can generate sounds and upload files. Log in as user {REMOTE_USER!r}.")


class BodyLimit:
    """ASGI middleware: HTTP 413 for request bodies over the limits (see the module docstring).

    A body with a ``Content-Length`` over the limit is refused unread; a chunked body (no
    length) is read up to the limit, then handed on to the app (or refused at the limit).

    Args:
        app: the ASGI app it wraps.
        json_limit: bytes allowed for ``application/json`` bodies.
        body_limit: bytes allowed for any other body.
    """

    def __init__(self, app, json_limit: int = MAX_JSON_BYTES, body_limit: int = MAX_BODY_BYTES):
        self.app = app
        self.json_limit = int(json_limit)
        self.body_limit = int(body_limit)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        json_body = b"json" in headers.get(b"content-type", b"").lower()
        limit = self.json_limit if json_body else self.body_limit
        length = headers.get(b"content-length", b"")
        if length.isdigit():
            if int(length) > limit:
                return await _refuse(send, limit)
            return await self.app(scope, receive, send)
        if b"chunked" not in headers.get(b"transfer-encoding", b"").lower():
            return await self.app(scope, receive, send)
        chunks, seen = [], 0
        while True:  # a chunked body: read it (at most `limit` bytes) before the app sees it
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            seen += len(message.get("body", b""))
            if seen > limit:
                return await _refuse(send, limit)
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replayed():
            return replay.pop() if replay else await receive()

        await self.app(scope, replayed, send)


async def _refuse(send, limit: int) -> None:
    body = f'{{"error": "request body too large (limit {limit} bytes)"}}'.encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
