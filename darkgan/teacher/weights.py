"""Finding, verifying and downloading pretrained tagger weights.

Search order for a model's file (first hit wins):
    1. an explicit path (``--weights PATH`` / ``load_teacher(weights=...)``);
    2. ``$DARKGAN_MODELS_DIR/<model-dir>/<file>``;
    3. the user cache, ``darkgan.paths.cache_dir()/models/<model-dir>/<file>``;
    4. ``../shared/models/<model-dir>/<file>`` beside a development checkout
    (2-4 are :func:`darkgan.paths.models_dirs`);
    5. a download from the upstream release into the user cache (3), when the model has a
       pinned URL and SHA-256.
Every file with a pinned SHA-256 is verified; a mismatch raises :class:`WeightsError`, so a
truncated download or a different model is never used silently.
"""
from __future__ import annotations

import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from darkgan.errors import WeightsError

_SHA_CACHE: dict[tuple[str, int, int], str] = {}


@dataclass(frozen=True)
class WeightsSpec:
    """Where a model's weights live: ``<models dir>/<model_dir>/<filename>``.

    ``sha256`` None means "not pinned" (the file's own checksum is recorded, nothing verified);
    ``url`` None means "no automatic download" (``hint`` tells the user where to get it).
    """

    name: str
    model_dir: str
    filename: str
    sha256: str | None = None
    url: str | None = None
    hint: str = ""


def file_sha256(path: Path) -> str:
    """SHA-256 of ``path``, memoised per (path, size, mtime) for this process."""
    from darkgan.utils.io import sha256_file

    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = sha256_file(path)
    return _SHA_CACHE[key]


def verify(path: Path, spec: WeightsSpec) -> str:
    """Return the file's SHA-256; raise :class:`WeightsError` if it differs from the pinned one."""
    digest = file_sha256(path)
    if spec.sha256 and digest != spec.sha256:
        raise WeightsError(
            f"{path}: checksum mismatch for {spec.name} weights (sha256 {digest[:12]}..., "
            f"expected {spec.sha256[:12]}...); delete or replace the file")
    return digest


def candidate_paths(spec: WeightsSpec) -> list[Path]:
    """The places searched, in order (steps 2-4 of the module docstring)."""
    from darkgan.paths import models_dirs

    return [d / spec.model_dir / spec.filename for d in models_dirs()]


def resolve_weights(spec: WeightsSpec, explicit: str | os.PathLike | None = None,
                    download: bool = True) -> tuple[Path, str]:
    """Find (or fetch) and verify the weights file; returns ``(path, sha256)``.

    Raises:
        WeightsError: explicit path missing, checksum mismatch, or not found anywhere and the
            download failed / is not available (message says where to put the file).
    """
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise WeightsError(f"{path}: weights file not found")
        return path, verify(path, spec)
    for path in candidate_paths(spec):
        if path.is_file():
            return path, verify(path, spec)
    from darkgan.paths import cache_dir

    target = cache_dir() / "models" / spec.model_dir / spec.filename
    if spec.url and download and os.environ.get("DARKGAN_OFFLINE", "") not in ("1", "true", "yes"):
        try:
            _download(spec, target)
            return target, verify(target, spec)
        except WeightsError as e:
            if "checksum" in str(e):
                raise
            reason = str(e)
    else:
        reason = "no automatic download" if not spec.url else "download disabled"
    where = spec.url or spec.hint or "the upstream release"
    raise WeightsError(
        f"{spec.name} weights {spec.filename} not found ({reason}); get it from {where} and put "
        f"it in {target.parent}/ or $DARKGAN_MODELS_DIR/{spec.model_dir}/, or pass --weights PATH")


def _download(spec: WeightsSpec, target: Path, timeout: float = 30.0) -> None:
    """Download ``spec.url`` to ``target`` atomically, verifying the checksum before the rename."""
    import hashlib

    from darkgan.utils.io import atomic_write

    try:
        from tqdm import tqdm

        with urllib.request.urlopen(spec.url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            h = hashlib.sha256()
            with atomic_write(target, "wb") as f, tqdm(total=total, unit="B", unit_scale=True,
                                                        desc=f"downloading {spec.filename}") as bar:
                while block := resp.read(1 << 16):
                    f.write(block)
                    h.update(block)
                    bar.update(len(block))
                if spec.sha256 and h.hexdigest() != spec.sha256:
                    raise WeightsError(f"{spec.url}: checksum mismatch of the downloaded file "
                                       f"(sha256 {h.hexdigest()[:12]}..., expected {spec.sha256[:12]}...)")
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        raise WeightsError(f"download from {spec.url} failed: {getattr(e, 'reason', e)}") from None
