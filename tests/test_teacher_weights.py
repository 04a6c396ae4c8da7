"""Weights search order, checksums, download and the offline message (issue 3, item 2)."""
from __future__ import annotations

import os
import shutil

import pytest

import darkgan.paths
from darkgan.errors import DarkGANError, WeightsError
from darkgan.teacher import load_teacher
from darkgan.teacher.efficientat import WEIGHTS_SHA256, WEIGHTS_SPEC
from darkgan.teacher.weights import WeightsSpec, candidate_paths, resolve_weights


@pytest.fixture(scope="module")
def real_weights():
    for p in candidate_paths(WEIGHTS_SPEC):
        if p.is_file():
            return p
    pytest.fail("mn04_as_mAP_432.pt not found (set DARKGAN_MODELS_DIR=../shared/models)")


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Empty models dir, empty cache, no ../shared: nothing can be found."""
    monkeypatch.setenv("DARKGAN_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("DARKGAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(darkgan.paths, "REPO_ROOT", tmp_path / "repo")
    return tmp_path


def test_search_order(isolated, real_weights):
    cache = isolated / "cache" / "models" / "efficientat-mn04-as"
    env = isolated / "models" / "efficientat-mn04-as"
    for d in (cache, env):
        d.mkdir(parents=True)
        shutil.copy(real_weights, d / real_weights.name)
    path, sha = resolve_weights(WEIGHTS_SPEC)
    assert path == env / real_weights.name and sha == WEIGHTS_SHA256  # $DARKGAN_MODELS_DIR first
    os.unlink(env / real_weights.name)
    assert resolve_weights(WEIGHTS_SPEC)[0] == cache / real_weights.name  # then the user cache
    assert resolve_weights(WEIGHTS_SPEC, explicit=real_weights)[0] == real_weights  # explicit wins


def test_checksum_mismatch_is_a_weights_error(isolated, real_weights):
    bad = isolated / "bad.pt"
    data = bytearray(real_weights.read_bytes())
    data[-100] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="checksum mismatch"):
        load_teacher("efficientat-mn04", weights=bad)
    with pytest.raises(WeightsError, match="not found"):
        load_teacher("efficientat-mn04", weights=isolated / "nope.pt")


def test_offline_message_says_where_to_put_the_file(isolated, monkeypatch):
    monkeypatch.setenv("DARKGAN_OFFLINE", "1")
    with pytest.raises(WeightsError) as e:
        resolve_weights(WEIGHTS_SPEC)
    msg = str(e.value)
    assert "\n" not in msg
    assert str(isolated / "cache" / "models" / "efficientat-mn04-as") in msg and "--weights" in msg


def test_download_verifies_checksum(isolated, real_weights):
    url = real_weights.resolve().as_uri()  # file:// stands in for the release URL
    spec = WeightsSpec("efficientat-mn04", "efficientat-mn04-as", real_weights.name, WEIGHTS_SHA256, url)
    path, sha = resolve_weights(spec)
    assert path == isolated / "cache" / "models" / "efficientat-mn04-as" / real_weights.name
    assert sha == WEIGHTS_SHA256
    wrong = WeightsSpec("x", "x-dir", "x.pt", "0" * 64, url)
    with pytest.raises(WeightsError, match="checksum mismatch"):
        resolve_weights(wrong)
    assert not (isolated / "cache" / "models" / "x-dir" / "x.pt").exists()
    unreachable = WeightsSpec("y", "y-dir", "y.pt", "0" * 64, (isolated / "missing.pt").as_uri())
    with pytest.raises(WeightsError, match="download from .* failed"):
        resolve_weights(unreachable)


def test_unknown_teacher_lists_known_names():
    with pytest.raises(DarkGANError, match="efficientat-mn04, panns-cnn14, yamnet"):
        load_teacher("openl3")
