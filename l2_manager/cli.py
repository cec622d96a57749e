"""The answer commands (`buy`, `sell`): start a session, wait for the books, walk them, render.

main.py dispatches here; this module is the front end of l2_manager (the data side is reached only
through `data_manager.session`, whose network parts load lazily).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

from data_manager.session import open_session

log = logging.getLogger(__name__)

EXIT_OK, EXIT_USAGE, EXIT_PARTIAL, EXIT_NONE = 0, 2, 3, 4


class AnswerCommand:
    """`buy SIZE` / `sell SIZE`: what a market order of SIZE gets on each venue and merged."""

    def help(self, name: str) -> str:
        return "what a market buy gets (walks the asks)" if name == "buy" else "what a market sell gets (walks the bids)"

    def add_arguments(self, parser: argparse.ArgumentParser, name: str) -> None:
        from main import non_negative_int, parse_size, positive_seconds

        parser.add_argument("size", type=parse_size, help="how much of the base asset, e.g. 15 or 2.5")
        parser.add_argument("--levels", type=non_negative_int, default=12, metavar="N",
                            help="level rows shown per tree (default 12; 0 shows none; --json has all)")
        parser.add_argument("--watch", type=positive_seconds, metavar="SECONDS",
                            help="keep running and redraw the answer every SECONDS")

    async def run(self, args: argparse.Namespace, config, venues) -> int:
        async with open_session(config, venues, args.symbol, args.source) as session:
            await session.wait_ready(args.max_wait)
            if args.watch:
                return await _watch(args, session)
            return _answer_once(args, session)


answer_command = AnswerCommand()


def _answer(args: argparse.Namespace, session):
    from l2_manager.answer import build_answer
    from l2_manager.depletion import Action

    return build_answer(Action(args.command), args.size, list(session.views.values()), args.source,
                        session.reasons(args.max_wait))


def exit_code(answer) -> int:
    live = sum(1 for status, _ in answer.venues if status.included)
    return EXIT_OK if live == len(answer.venues) else EXIT_NONE if live == 0 else EXIT_PARTIAL


def _answer_once(args: argparse.Namespace, session) -> int:
    from rich.console import Console

    from l2_manager.render import answer_json, render

    answer = _answer(args, session)
    code = exit_code(answer)
    log.info("answered %s %s from %s: exit %d", args.command, args.size, args.source, code)
    if args.json:
        print(json.dumps(answer_json(answer), indent=2))
    if code == EXIT_NONE:
        for status, _ in answer.venues:
            print(f"{status.name}: {status.reason}", file=sys.stderr)
        if args.source == "live":
            print("hint: no venue could be reached from this machine; "
                  "`--source sim` runs the same client against the built-in simulator", file=sys.stderr)
    elif not args.json:
        render(answer, Console(), args.levels)
    return code


async def _watch(args: argparse.Namespace, session) -> int:
    from rich.console import Console
    from rich.live import Live

    from l2_manager.render import answer_group

    console = Console()
    with Live(console=console, auto_refresh=False, screen=False) as live:
        while True:
            live.update(answer_group(_answer(args, session), args.levels), refresh=True)
            await asyncio.sleep(args.watch)
