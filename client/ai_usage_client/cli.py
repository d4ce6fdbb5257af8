"""``ai-usage-client``: inspect a client's spool, and list, retry or purge the events the ledger refused.

    ai-usage-client status --spool PATH [--json]
    ai-usage-client dead-letters list --spool PATH [--limit N] [--json]
    ai-usage-client dead-letters retry --spool PATH (--request-id ID ... | --all)
    ai-usage-client dead-letters purge --spool PATH (--request-id ID ... | --all)

``retry`` moves dead letters back to the pending events, which the next client on that spool sends (after the
event or the ledger has been fixed; an event still invalid comes back as a dead letter). Exit codes: 0 done,
2 bad usage, 1 the spool cannot be read or written.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from .spool import Spool, SpoolError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ai-usage-client", description="Inspect an ai-usage-client spool.")
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser("status", help="events waiting in the spool, and dead letters")
    _spool_option(status)
    status.add_argument("--json", action="store_true", help="print JSON")
    dead = commands.add_parser("dead-letters", help="events the ledger refused (invalid, or a conflict)")
    actions = dead.add_subparsers(dest="action")
    listing = actions.add_parser("list", help="list them (the default)")
    for target in (dead, listing):
        _spool_option(target, required=target is listing)
        target.add_argument("--limit", type=int, default=None, help="at most N, oldest first")
        target.add_argument("--json", action="store_true", help="print JSON, one object per dead letter")
    for name, about in (("retry", "send them again (moved back to pending)"), ("purge", "delete them")):
        action = actions.add_parser(name, help=about)
        _spool_option(action)
        chosen = action.add_mutually_exclusive_group(required=True)
        chosen.add_argument("--request-id", action="append", dest="request_ids", help="this event (repeatable)")
        chosen.add_argument("--all", action="store_true", help="every dead letter")
    return parser


def _spool_option(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--spool", type=Path, required=required, help="the client's spool_path (SQLite file)")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.spool is None:
        print("ai-usage-client: error: --spool is required", file=sys.stderr)
        return 2
    if not args.spool.is_file():
        print(f"ai-usage-client: error: --spool: no such file: {args.spool}", file=sys.stderr)
        return 2
    try:
        spool = Spool(args.spool)
        try:
            return _run(spool, args)
        finally:
            spool.close()
    except SpoolError as exc:
        print(f"ai-usage-client: {exc}", file=sys.stderr)
        return 1


def _run(spool: Spool, args: argparse.Namespace) -> int:
    if args.command == "status":
        counts = {"pending": spool.pending_count(), "dead_letters": spool.dead_count()}
        print(
            json.dumps(counts) if args.json else f"pending: {counts['pending']}\ndead letters: {counts['dead_letters']}"
        )
        return 0
    if args.action in (None, "list"):
        _list(spool, args.limit, args.json)
        return 0
    ids = None if args.all else args.request_ids
    if args.action == "retry":
        print(f"moved {spool.retry_dead(ids)} dead letter(s) back to pending")
    else:
        print(f"purged {spool.purge_dead(ids)} dead letter(s)")
    return 0


def _list(spool: Spool, limit: int | None, as_json: bool) -> None:
    for letter in spool.dead_letters(limit):
        at = datetime.fromtimestamp(letter.rejected_at, UTC).isoformat(timespec="seconds")
        if as_json:
            row = {"request_id": letter.request_id, "rejected_at": at, "status": letter.status}
            print(json.dumps({**row, "errors": letter.errors, "event": letter.event}, ensure_ascii=True))
            continue
        reasons = "; ".join(f"{error.get('field')}: {error.get('message')}" for error in letter.errors)
        event = letter.event
        # Stored text is shown escaped (ascii), never acted on by the terminal.
        what = json.dumps({k: event.get(k) for k in ("user_id", "model", "task_type") if k in event}, ensure_ascii=True)
        print(f"{at}  {json.dumps(letter.request_id, ensure_ascii=True)}  {letter.status}  {what}  {reasons!a}")


if __name__ == "__main__":
    sys.exit(main())
