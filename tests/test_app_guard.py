"""The app's network exposure (issue 17): binding beyond loopback needs an explicit flag (and then a
login token), and oversized request bodies are refused with HTTP 413 by the running server."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from darkgan.app.guard import MAX_JSON_BYTES, check_host, is_loopback
from darkgan.errors import DarkGANError
from test_app_helpers import make_tiny_checkpoint


def test_only_loopback_without_the_flag(capsys):
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert is_loopback(host) and check_host(host, allow_remote=False) is None
    for host in ("0.0.0.0", "::", "192.168.1.20", "myhost.example"):
        assert not is_loopback(host)
        with pytest.raises(DarkGANError, match="--allow-remote"):
            check_host(host, allow_remote=False)
        assert "WARNING" in check_host(host, allow_remote=True)
    from darkgan.cli import main

    assert main(["app", "--host", "0.0.0.0", "--port", "0"]) == 2  # refused before anything loads
    err = capsys.readouterr().err
    assert "--allow-remote" in err and len(err.strip().splitlines()) == 1


def _status_before_body(url: str, length: int, content_type: str = "application/json") -> int:
    """Send only the headers of a POST announcing ``length`` bytes; the status the server answers
    without reading the body (a refused body is never read)."""
    import http.client
    from urllib.parse import urlsplit

    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    try:
        conn.putrequest("POST", u.path)
        conn.putheader("Content-Type", content_type)
        conn.putheader("Content-Length", str(length))
        conn.endheaders()
        return conn.getresponse().status
    finally:
        conn.close()


def _post(url: str, body: bytes) -> int:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from darkgan.app.app import serve
    from darkgan.app.controller import Studio

    ckpt = make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", k=8)
    studio = Studio.load(ckpt, out_dir=tmp_path_factory.mktemp("out"))
    demo, url = serve(studio=studio, port=0, block=False, quiet=True)
    yield url.rstrip("/")
    demo.close()


def test_oversized_bodies_are_refused_with_413_by_the_running_server(served):
    join = f"{served}/gradio_api/queue/join"
    assert _status_before_body(join, 200 << 20) == 413  # the 200 MB JSON body: refused unread
    assert _status_before_body(join, MAX_JSON_BYTES + 1) == 413
    assert _status_before_body(f"{served}/gradio_api/upload", 22 << 20, "multipart/form-data; boundary=x") == 413
    # a normal-sized request still reaches Gradio (which answers it, whatever it thinks of it)
    assert _post(join, json.dumps({"data": [], "fn_index": 0, "session_hash": "abc"}).encode()) != 413


def _asgi(middleware, headers, chunks):
    """Run ``middleware`` on one HTTP request whose body arrives in ``chunks``: (status, body the app read)."""
    import asyncio

    got, sent = [], []

    async def app(scope, receive, send):  # stands for Gradio: reads the whole body, answers 200
        while True:
            m = await receive()
            got.append(m.get("body", b""))
            if not m.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(m):
        sent.append(m)

    scope = {"type": "http", "method": "POST", "headers": headers}
    asyncio.run(middleware(app)(scope, receive, send))
    return sent[0]["status"], b"".join(got)


def test_chunked_bodies_are_counted_up_to_the_limit():
    from darkgan.app.guard import BodyLimit

    chunked = [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")]
    status, read = _asgi(lambda a: BodyLimit(a, json_limit=1000), chunked, [b"x" * 600, b"x" * 600, b"x" * 600])
    assert status == 413 and read == b""  # refused at the limit: the app never saw a byte
    status, read = _asgi(lambda a: BodyLimit(a, json_limit=1000), chunked, [b"x" * 400, b"y" * 400])
    assert status == 200 and read == b"x" * 400 + b"y" * 400  # under the limit: passed on whole
    upload = [(b"content-type", b"multipart/form-data"), (b"transfer-encoding", b"chunked")]
    assert _asgi(lambda a: BodyLimit(a, json_limit=1000, body_limit=5000), upload, [b"z" * 1500])[0] == 200
