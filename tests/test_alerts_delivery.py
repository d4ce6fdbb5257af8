"""Webhook delivery against a local HTTP receiver: the three bodies, retries on 5xx, no retry on 4xx, no redirects,
and webhook URLs (their path is the secret) never in a log line."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from services.alerts import Alert, RuleKind, Webhook, WebhookFormat, WebhookSender
from services.alerts.rules import guess_format

FIRED_AT = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)
SECRET = "T000/B000/s3cr3t-t0ken"


class Receiver:
    """A tiny webhook receiver in a thread: answers the scripted statuses in turn (then 200), keeps every body."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, Any]] = []
        self.script: list[int] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                with receiver.lock:
                    status = receiver.script.pop(0) if receiver.script else 200
                    if status == 200:
                        receiver.bodies.append((self.path, body))
                self.send_response(status)
                if status in (301, 302, 307):
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    def url(self, path: str = f"/services/{SECRET}") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


ALERT = Alert(
    rule="whale",
    kind=RuleKind.PLAYER_COST,
    scope="player:studio-a/<!channel>",
    period="2026-11-24",
    title="player <!channel> of tenant studio-a: $12.50 today",
    summary="player <!channel> reached $12.50 on 2026-11-24 (UTC), above the $5.00 threshold.",
    fields=(("player", "<!channel>"), ("cost", "$12.50"), ("threshold", "$5.00")),
)


def _sender(*webhooks: Webhook, pauses: list[float] | None = None) -> WebhookSender:
    return WebhookSender(webhooks, sleep=(pauses if pauses is not None else []).append)


def test_slack_body_has_text_blocks_and_fields_with_mentions_escaped(receiver: Receiver) -> None:
    delivery = _sender(Webhook(receiver.url(), WebhookFormat.SLACK)).send(ALERT, FIRED_AT)

    assert delivery.delivered == [f"127.0.0.1:{receiver.server.server_address[1]}"]
    [(_path, body)] = receiver.bodies
    assert body["text"].startswith("player &lt;!channel&gt;")
    sections = [block for block in body["blocks"] if "fields" in block]
    assert sections[0]["fields"][1] == {"type": "mrkdwn", "text": "*cost*\n$12.50"}
    assert body["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": ALERT.title}}
    # Slack reads mentions in mrkdwn text and in the top-level text, never in plain_text.
    mrkdwn: list[str] = [body["text"]]
    _collect_mrkdwn(body["blocks"], mrkdwn)
    assert len(mrkdwn) == 6 and not any("<" in text for text in mrkdwn)


def _collect_mrkdwn(node: Any, found: list[str]) -> None:
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn":
            found.append(node["text"])
        for value in node.values():
            _collect_mrkdwn(value, found)
    elif isinstance(node, list):
        for item in node:
            _collect_mrkdwn(item, found)


def test_discord_body_has_content_and_embed_fields_and_pings_nobody(receiver: Receiver) -> None:
    _sender(Webhook(receiver.url(), WebhookFormat.DISCORD)).send(ALERT, FIRED_AT)

    [(_path, body)] = receiver.bodies
    assert body["content"] == ALERT.title
    assert body["allowed_mentions"] == {"parse": []}
    [embed] = body["embeds"]
    assert embed["fields"][1] == {"name": "cost", "value": "$12.50", "inline": True}
    assert embed["timestamp"] == FIRED_AT.isoformat()


def test_generic_body_carries_the_alert_key_and_fields(receiver: Receiver) -> None:
    _sender(Webhook(receiver.url())).send(ALERT, FIRED_AT)

    [(path, body)] = receiver.bodies
    assert path == f"/services/{SECRET}"
    assert body["alert"]["rule"] == "whale" and body["alert"]["period"] == "2026-11-24"
    assert body["alert"]["fields"] == {"player": "<!channel>", "cost": "$12.50", "threshold": "$5.00"}


def test_a_5xx_is_retried_with_growing_pauses_until_delivered(receiver: Receiver) -> None:
    receiver.script = [503, 500]
    pauses: list[float] = []

    delivery = _sender(Webhook(receiver.url(), attempts=3, backoff_seconds=1.0), pauses=pauses).send(ALERT, FIRED_AT)

    assert delivery.ok and len(receiver.bodies) == 1
    assert len(pauses) == 2 and 0.5 <= pauses[0] <= 1.0 and 1.0 <= pauses[1] <= 2.0


def test_a_5xx_on_every_attempt_fails_after_the_attempts(receiver: Receiver) -> None:
    receiver.script = [502, 502, 502]
    delivery = _sender(Webhook(receiver.url(), attempts=3)).send(ALERT, FIRED_AT)

    assert not delivery.ok and delivery.failed and receiver.bodies == [] and receiver.script == []


@pytest.mark.parametrize("status", [400, 404, 302])
def test_a_4xx_or_a_redirect_is_not_retried(receiver: Receiver, status: int) -> None:
    receiver.script = [status, 200]
    delivery = _sender(Webhook(receiver.url(), attempts=3)).send(ALERT, FIRED_AT)

    assert not delivery.ok and receiver.script == [200]  # one attempt, the redirect not followed


def test_an_unreachable_webhook_is_retried_then_fails() -> None:
    pauses: list[float] = []
    delivery = _sender(Webhook("http://127.0.0.1:9/hook", attempts=2, timeout_seconds=1), pauses=pauses).send(
        ALERT, FIRED_AT
    )

    assert not delivery.ok and len(pauses) == 1


def test_one_webhook_failing_does_not_stop_the_others(receiver: Receiver) -> None:
    delivery = _sender(Webhook("http://127.0.0.1:9/x", attempts=1), Webhook(receiver.url())).send(ALERT, FIRED_AT)

    assert delivery.ok and delivery.failed == ["127.0.0.1:9"] and len(receiver.bodies) == 1


def test_webhook_urls_never_reach_the_logs(receiver: Receiver, captured_logs: list[dict]) -> None:
    receiver.script = [500, 200, 404]
    webhook = Webhook(receiver.url())
    _sender(webhook, Webhook(f"http://127.0.0.1:9/hooks/{SECRET}", attempts=2)).send(ALERT, FIRED_AT)
    _sender(webhook).send(ALERT, FIRED_AT)

    text = repr(captured_logs) + repr(webhook)
    assert {e["event"] for e in captured_logs} >= {"alerts.delivered", "alerts.delivery_retry",
                                                   "alerts.delivery_failed", "alerts.delivery_refused"}  # fmt: skip
    assert "s3cr3t" not in text and "/services/" not in text and "/hooks/" not in text
    assert all(
        e.get("webhook", "").startswith("127.0.0.1:") for e in captured_logs if e["event"].startswith("alerts.d")
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://hooks.slack.com/services/T/B/x", WebhookFormat.SLACK),
        ("https://discord.com/api/webhooks/1/x", WebhookFormat.DISCORD),
        ("https://ptb.discordapp.com/api/webhooks/1/x", WebhookFormat.DISCORD),
        ("https://example.com/hooks/slack", WebhookFormat.GENERIC),
    ],
)
def test_the_format_follows_the_host_unless_named(url: str, expected: WebhookFormat) -> None:
    assert guess_format(url) is expected
