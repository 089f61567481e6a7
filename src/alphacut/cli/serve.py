"""``alphacut serve``: the local web app (``server.run.serve``). ``cli.build_parser`` calls :func:`register`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..errors import AlphacutError, UsageError
from ..imageio.decode import DEFAULT_MAX_PIXELS
from ..models.catalog import DEFAULT_MODEL


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "serve", help="start the local web app and open it in the browser",
        description="Start the local web app on 127.0.0.1 (a free port) and open it in your browser. "
                    "Nothing leaves this machine.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    p.add_argument("--no-browser", action="store_true", help="print the link but do not open a browser")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a non-loopback --host (other machines can connect; the token is still required)")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="with --allow-remote: a host name accepted in the Host header (repeatable)")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"default model (default {DEFAULT_MODEL})")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: automatic)")
    p.add_argument("--max-queue", type=int, default=256, help="queued images before uploads get 429 (default 256)")
    p.add_argument("--max-upload-mb", type=int, default=200, help="largest upload in MB (default 200)")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="largest image in pixels")
    p.add_argument("--result-ttl", type=float, default=6.0, help="hours an undownloaded result is kept (default 6)")
    p.add_argument("--work-dir", type=Path, default=None, help="where uploads and results live (default: a temp dir)")
    p.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"],
                   help="server log level; info adds the access log (tokens in it are redacted)")
    p.add_argument("--token-file", type=Path, default=None, metavar="FILE",
                   help="a stable token for integrations, read from FILE (else $ALPHACUT_TOKEN; else a new one per launch)")
    p.add_argument("--rembg-api", action="store_true",
                   help="also answer rembg's HTTP API (POST/GET /api/remove; docs/rembg-api.md)")
    p.add_argument("--rembg-fetch-urls", action="store_true",
                   help="with --rembg-api: GET /api/remove?url= may fetch public http(s) URLs (never private addresses)")
    p.add_argument("--accept-license", action="store_true",
                   help="with --rembg-api: requests may run non-commercial models (bria-rmbg, rmbg-*)")
    p.set_defaults(func=cmd_serve)
    return p


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from ..server.run import serve
        from ..server.state import ServerSettings
    except ImportError as exc:  # the server extra (fastapi, uvicorn) is not installed
        print(f"alphacut: the web app needs the server extra: pip install 'alphacut[server]' ({exc})", file=sys.stderr)
        return 2

    from ..server.tokens import stable_token

    try:
        if args.rembg_fetch_urls and not args.rembg_api:
            raise UsageError("--rembg-fetch-urls needs --rembg-api")
        stable = stable_token(args.token_file, warn=logging.getLogger("alphacut.serve"))
    except AlphacutError as err:
        print(f"alphacut: {err}", file=sys.stderr)
        return err.exit_code
    settings = ServerSettings(
        token=stable.token if stable else None, rembg_api=args.rembg_api,
        rembg_fetch_urls=args.rembg_fetch_urls, accept_license=args.accept_license,
        model=args.model, workers=args.workers, max_queue=args.max_queue,
        max_upload_bytes=args.max_upload_mb * 1024 * 1024, max_pixels=args.max_pixels,
        result_ttl_s=args.result_ttl * 3600, work_dir=args.work_dir,
        extra_hosts=tuple(args.allowed_host),
    )
    try:
        return serve(args.host, args.port, open_browser=not args.no_browser, settings=settings,
                     allow_remote=args.allow_remote, log_level=args.log_level)
    except AlphacutError as err:
        print(f"alphacut: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130
