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


def _post(url: str, body: bytes, content_type: str = "application/json") -> int:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
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


def test_oversized_json_bodies_are_refused_with_413(served):
    join = f"{served}/gradio_api/queue/join"
    big = json.dumps({"data": ["x" * (MAX_JSON_BYTES + 10)], "fn_index": 0, "session_hash": "abc"}).encode()
    assert _post(join, big) == 413
    # the same limit without a Content-Length header (chunked): counted as it streams in
    req = urllib.request.Request(join, data=iter([big[:1 << 19], big[1 << 19:]]), method="POST",
                                 headers={"Content-Type": "application/json"})  # urllib sends an iterable chunked
    try:
        code = urllib.request.urlopen(req, timeout=60).status
    except urllib.error.HTTPError as e:
        code = e.code
    assert code == 413
    # a normal-sized request still reaches Gradio (which answers it, whatever it thinks of it)
    assert _post(join, json.dumps({"data": [], "fn_index": 0, "session_hash": "abc"}).encode()) != 413
    # uploads are multipart: the 21 MB body limit
    assert _post(f"{served}/gradio_api/upload", b"0" * (22 << 20), "multipart/form-data; boundary=x") == 413
