"""Handlers for transactions (appwrite-facts §1.3)."""

from __future__ import annotations

from . import params as p
from .engine import Engine, Reply, Request
from .errors import AppwriteError
from .handlers_schema import simple_page
from .transactions import TTL_DEFAULT, TTL_MAX, TTL_MIN


def create_transaction(e: Engine, r: Request) -> Reply:
    # appwrite-facts §1.3: ttl 60..3600, default 300; outside → 400 general_argument_invalid.
    ttl = p.get_int(r.params, "ttl", TTL_MIN, TTL_MAX, TTL_DEFAULT)
    return 201, e.transactions.create(ttl).model()


def list_transactions(e: Engine, r: Request) -> Reply:
    items = list(e.transactions.items.values())
    page = simple_page(r.params.get("queries"), items)
    return 200, {"total": len(items), "transactions": [t.model() for t in page]}


def get_transaction(e: Engine, r: Request) -> Reply:
    return 200, e.transactions.get(r.args["tx"]).model()


def delete_transaction(e: Engine, r: Request) -> Reply:
    e.transactions.delete(r.args["tx"])
    return 204, None


def update_transaction(e: Engine, r: Request) -> Reply:
    tx_id = r.args["tx"]
    e.transactions.get(tx_id)
    commit = p.get_bool(r.params, "commit", False)
    rollback = p.get_bool(r.params, "rollback", False)
    if commit == rollback:
        # appwrite-facts §1.3: exactly one of commit/rollback must be true → else 400 general_bad_request.
        raise AppwriteError("general_bad_request", "Exactly one of commit or rollback must be true.")
    tx = e.transactions.commit(tx_id) if commit else e.transactions.rollback(tx_id)
    return 200, tx.model()


def create_operations(e: Engine, r: Request) -> Reply:
    tx_id = r.args["tx"]
    operations = e.transactions.parse_operations(tx_id, r.params.get("operations"))
    return 201, e.transactions.stage(tx_id, operations).model()
