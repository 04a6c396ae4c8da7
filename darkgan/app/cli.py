"""``darkgan app``: the interactive web app (see docs/app.md)."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``app`` command to the ``darkgan`` parser."""
    p = sub.add_parser(
        "app",
        help="start the interactive web app (Gradio) on this machine",
        description="Start a local web app to play DarkGAN: pitch, seed, attribute sliders, "
                    "start from a real sound, 2-D pad, scale, downloads of the WAV and its settings. "
                    "Binds to loopback (127.0.0.1) unless --host says otherwise; no share links, "
                    "no analytics.",
    )
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint or run folder, or a shipped one by name: default (the default), student "
                        "(the fast distilled student) or control (the word-control generator)")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to bind (default 127.0.0.1); anything beyond loopback needs --allow-remote")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a --host reachable from other machines (e.g. 0.0.0.0): prints a warning and asks "
                        "for a login (user darkgan, a random token printed at start-up)")
    p.add_argument("--port", type=int, default=7860, help="TCP port (default 7860)")
    p.add_argument("--device", default="cpu", help="torch device for the generator (default cpu)")
    p.add_argument("--data", default=None,
                   help="labelled dataset folder: enables \"start from a dataset note\" by note name")
    p.add_argument("--rank-notes", type=int, default=64,
                   help="notes generated once to rank attribute responsiveness when the checkpoint "
                        "stores no ranking (cached in the user cache folder; 0: vocabulary order)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from darkgan.errors import DarkGANError

    if not 0 <= args.port <= 65535:
        raise DarkGANError(f"--port {args.port}: not a TCP port (0..65535)")
    if args.rank_notes < 0:
        raise DarkGANError(f"--rank-notes {args.rank_notes}: must be >= 0")
    from darkgan.app.guard import check_host

    check_host(args.host, args.allow_remote)  # refuse before loading anything
    from darkgan.app.app import serve

    print(f"darkgan app: loading {args.checkpoint or 'the shipped checkpoint'} ...", flush=True)
    serve(args.checkpoint, host=args.host, port=args.port, device=args.device, data=args.data,
          rank_notes=args.rank_notes, allow_remote=args.allow_remote)
    return 0
