"""The rules file: defaults without one, every mistake named by its key, webhook URLs never echoed."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from services.alerts import DEFAULT_RULES, RuleKind, WebhookFormat, load_config, parse_config
from services.cli import cli
from services.errors import ValidationFailed

GOOD = """
[[webhook]]
url = "https://hooks.slack.com/services/T0/B0/secret"

[[webhook]]
url = "https://alerts.example.com/in"
format = "discord"
timeout_seconds = 2.5
attempts = 5

[[rule]]
name = "spend"
kind = "global_cost"
window = "day"
threshold_usd = 0.1

[[rule]]
name = "studio-a-budget"
kind = "tenant_budget"
tenant = "studio-a"
monthly_budget_usd = 500
shares = [1.0, 0.5]
"""


def _errors(text: str, tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "alerts.toml"
    path.write_text(text)
    with pytest.raises(ValidationFailed) as caught:
        load_config(path)
    return {f.field: f.message for f in caught.value.fields}


def test_without_a_file_the_defaults_alert_on_50_dollars_in_24_hours() -> None:
    config = load_config(None)

    assert config.rules == DEFAULT_RULES and config.webhooks == ()
    spend = config.rules[0]
    assert (spend.kind, spend.window, spend.threshold) == (RuleKind.GLOBAL_COST, "24h", Decimal(50))


def test_a_file_is_read_exactly(tmp_path: Path) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text(GOOD)
    config = load_config(path)

    assert [r.name for r in config.rules] == ["spend", "studio-a-budget"]
    assert config.rules[0].threshold == Decimal("0.1")  # the decimal 0.1, not the float's binary value
    assert config.rules[1].shares == (Decimal("0.5"), Decimal("1.0"))
    assert [w.format for w in config.webhooks] == [WebhookFormat.SLACK, WebhookFormat.DISCORD]
    assert (config.webhooks[1].timeout_seconds, config.webhooks[1].attempts) == (2.5, 5)
    assert "secret" not in repr(config)


def test_a_file_with_only_webhooks_keeps_the_default_rules() -> None:
    config = parse_config({"webhook": [{"url": "https://example.com/hook"}]})

    assert config.rules == DEFAULT_RULES and len(config.webhooks) == 1


def test_a_bad_value_names_the_rule_and_key(tmp_path: Path) -> None:
    errors = _errors('[[rule]]\nname = "whale"\nkind = "player_cost"\nthreshold_usd = "lots"\n', tmp_path)

    assert errors == {"rule[0] (whale).threshold_usd": "must be a number"}


@pytest.mark.parametrize(
    ("rule", "field", "words"),
    [
        ('name = "x"\nkind = "global_cost"', "rule[0] (x).threshold_usd", "is required"),
        ('name = "x"\nkind = "global_cost"\nthreshold_usd = 5\nwindow = "week"', "rule[0] (x).window", '"24h"'),
        ('name = "x"\nkind = "player_cost"\nthreshold_usd = -1', "rule[0] (x).threshold_usd", "at least 0"),
        ('name = "x"\nkind = "provider_errors"\nthreshold_percent = 120', "rule[0] (x).threshold_percent", "100"),
        ('name = "x"\nkind = "provider_errors"\nthreshold_percent = 5\nmin_requests = 0', "rule[0] (x).min_requests",
         "integer from 1"),
        ('name = "x"\nkind = "tenant_budget"\nmonthly_budget_usd = 5', "rule[0] (x).tenant", "tenant id"),
        ('name = "x"\nkind = "tenant_budget"\ntenant = "a"', "rule[0] (x).monthly_budget_usd", "is required"),
        ('name = "x"\nkind = "tenant_budget"\ntenant = "a"\nmonthly_budget_usd = 5\nshares = []',
         "rule[0] (x).shares", "non-empty"),
        ('name = "x"\nkind = "global_cost"\nthreshold_usd = 5\nthreshold = 3', "rule[0] (x).threshold",
         "not a key of a global_cost rule"),
        ('name = "x"\nkind = "spend"', "rule[0] (x).kind", "must be one of"),
        ('name = "has space"\nkind = "unpriced_models"', "rule[0].name", "letters, digits"),
    ],
)  # fmt: skip
def test_each_mistake_names_its_key(rule: str, field: str, words: str, tmp_path: Path) -> None:
    errors = _errors(f"[[rule]]\n{rule}\n", tmp_path)

    assert field in errors and words in errors[field], errors


def test_two_rules_with_one_name_are_refused(tmp_path: Path) -> None:
    errors = _errors('[[rule]]\nname = "u"\nkind = "unpriced_models"\n' * 2, tmp_path)

    assert errors == {"rule[1] (u).name": "is used by another rule (names identify what was sent)"}


def test_unknown_sections_and_bad_toml_are_named(tmp_path: Path) -> None:
    assert "rules" in _errors('[[rules]]\nname = "u"\n', tmp_path)
    assert "is not valid TOML" in _errors("[[rule]\n", tmp_path)["alerts_file"]
    with pytest.raises(ValidationFailed, match="alerts_file: cannot be read"):
        load_config(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"# caf\xe9\n", "is not UTF-8 text: byte 0xe9 at offset 5"),  # was a UnicodeDecodeError traceback
        (b"x = " + b"[" * 5000 + b"]" * 5000, "is not valid TOML"),  # was a RecursionError
        (b"x = " + b"9" * 5000, "is not valid TOML"),  # was int()'s ValueError
        (b"# " + b"x" * (1024 * 1024), "is larger than 1024 KiB"),  # read whole before: --rules /dev/zero never ended
    ],
)
def test_a_file_that_cannot_be_toml_is_named_with_its_path(content: bytes, words: str, tmp_path: Path) -> None:
    path = tmp_path / "alerts.toml"
    path.write_bytes(content)
    with pytest.raises(ValidationFailed) as caught:
        load_config(path)

    [error] = caught.value.fields
    assert error.field == "alerts_file" and words in error.message and str(path) in error.message


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/s3cr3t", "not a url s3cr3t", 42])
def test_a_webhook_must_be_http_and_its_value_is_never_echoed(url: object, tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_config({"webhook": [{"url": url, "token": "x"}]})

    fields = {f.field: f.message for f in caught.value.fields}
    assert "webhook[0].url" in fields and "webhook[0].token" in fields
    assert "s3cr3t" not in str(caught.value) and "passwd" not in str(caught.value)


def test_the_cli_reports_a_bad_rules_file_by_key_with_exit_code_2(db_path: Path, tmp_path: Path) -> None:
    rules = tmp_path / "alerts.toml"
    rules.write_text('[[rule]]\nname = "whale"\nkind = "player_cost"\nthreshold_usd = "lots"\n')

    result = CliRunner().invoke(cli, ["alerts", "check", "--rules", str(rules)])

    assert result.exit_code == 2
    assert "rule[0] (whale).threshold_usd: must be a number" in result.output
