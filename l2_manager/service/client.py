"""The client side of `buy/sell SIZE --server URL`: the same answer from a running `serve`, printed the
same way, with no exchange connection of our own.

    code, text, to_stderr = await fetch_answer("http://127.0.0.1:8765", args)

`args` is the answer command's namespace (sizes, --quote, --fee, --merge, --limit-bps, --orders,
--brief, --levels, --json, --symbol, --venues). With --json the server's JSON document comes back
(printed with indent=2, as `--json` prints it); otherwise the server renders the answer with the CLI's
renderer at this terminal's width (and colours when stdout is a terminal). The exit code is the
server's (`X-Exit-Code`). `BTC_DEPTH_TOKEN`, when set, is sent as `Authorization: Bearer`.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import urllib.error
import urllib.request
from urllib.parse import urlencode, urlsplit

from data_manager import __version__
from l2_manager.answer import EXIT_NONE
from l2_manager.service.api import TOKEN_ENV

TIMEOUT = 10.0


class ServerError(Exception):
    """The server cannot be reached, or refused the question: one line for the user (exit 2)."""


def answer_query(args: argparse.Namespace, width: int, color: bool) -> list[tuple[str, str]]:
    """The answer command's options as /v1/depletion parameters."""
    query = [("action", args.command), ("symbol", args.symbol.name)]
    query += [("size", number + unit.lower()) for number, unit in args.sizes]
    for venue, rate in getattr(args, "fee", []):
        query.append(("fee", f"{venue}={rate}"))
    optional = {"merge": getattr(args, "merge", "spot"), "limit_bps": getattr(args, "limit_bps", None),
                "venues": getattr(args, "venues", None)}
    query += [(name, str(value)) for name, value in optional.items() if value is not None]
    query += [(name, "1") for name in ("quote", "orders") if getattr(args, name, False)]
    if getattr(args, "json", False):
        return query
    query += [("format", "text"), ("width", str(width)), ("levels", str(getattr(args, "levels", 12)))]
    query += [("brief", "1")] if getattr(args, "brief", False) else []
    query += [("color", "1")] if color else []
    return query


def get(url: str, timeout: float = TIMEOUT) -> tuple[int, dict[str, str], bytes]:
    """One GET (status, headers, body); an HTTP error status comes back with its body."""
    request = urllib.request.Request(url, headers={"User-Agent": f"btc-depth/{__version__}",
                                                   "Accept": "application/json, text/plain"})
    token = os.environ.get(TOKEN_ENV)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServerError(f"--server {base(url)}: cannot reach it ({reason})") from None


def base(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def fetch_answer(url: str, args: argparse.Namespace) -> tuple[int, str, bool]:
    """(exit code, what to print, print it on stderr) for `args`, asked of the server at `url`."""
    if not url.startswith(("http://", "https://")):
        raise ServerError(f"--server: expected a URL like http://127.0.0.1:8765, got {url!r}")
    width = shutil.get_terminal_size((100, 24)).columns
    query = urlencode(answer_query(args, width, sys.stdout.isatty()))
    status, headers, body = await asyncio.to_thread(get, f"{url.rstrip('/')}/v1/depletion?{query}")
    if status != 200:
        raise ServerError(f"--server {base(url)}: {_refusal(status, body)}")
    code = int(headers.get("X-Exit-Code", "0"))
    if getattr(args, "json", False):
        return code, json.dumps(json.loads(body), indent=2), False
    return code, body.decode("utf-8", "replace").rstrip("\n"), code == EXIT_NONE


def _refusal(status: int, body: bytes) -> str:
    try:
        error = json.loads(body).get("error", {})
        return f"{status}: {error.get('message')}"
    except (ValueError, AttributeError):
        return f"HTTP {status}"
