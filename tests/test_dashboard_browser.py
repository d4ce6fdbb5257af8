"""The admin dashboard in a real headless Chromium (Debian's, driven by selenium through chromium-driver), against a
live server on a seeded SQLite ledger with a fixed clock: it signs in with the admin key, waits for the data, shows
the API's figures, restacks the chart, filters by tenant and fits a phone, with no console error, no blank chart
and no error banner. Each view is saved as ``artifacts/dashboard/<view>.png`` (CI keeps the folder).

``scripts/bootstrap`` installs chromium and chromium-driver where it can (root with apt-get); elsewhere the test is
skipped, naming what is missing.
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from services.alerts import Alert, RuleKind, SQLiteAlertLog
from tests.http_harness import ADMIN, ADMIN_KEY, NOW, SERVER, LiveServer, event, live_server, make_app

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the test extra: scripts/bootstrap")
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "artifacts" / "dashboard"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs chromium and chromium-driver: scripts/bootstrap"),
]
WAIT = 20  # seconds for the page to settle; it normally does in well under one


def _seed_events() -> list[dict[str, Any]]:
    """Ten days of two tenants: three providers, a model with no price, failures and durations."""
    events: list[dict[str, Any]] = []
    mixes = [  # (tenant, user, model, provider, task type, input tokens)
        ("studio-a", "whale", "claude-sonnet-4-5", "anthropic", "story_progression", 40_000),
        ("studio-a", "minnow", "gpt-4o", "openai", "npc_dialogue", 2_000),
        ("studio-b", "bard", "gemini-2.5-flash", "google", "combat_narration", 30_000),
        ("studio-b", "bard", "mystery-model-x", "openai", "quest_selection", 5_000),
    ]
    for days_ago in range(10):
        at = NOW - timedelta(days=days_ago, minutes=30)
        for n, (tenant, user, model, provider, task, tokens) in enumerate(mixes):
            for i in range(1 + (days_ago + n) % 3):
                seeded = event(request_id=f"seed-{days_ago}-{n}-{i}", tenant_id=tenant, user_id=user, model=model,
                               provider=provider, task_type=task, tokens_input=tokens + 100 * days_ago,
                               timestamp=at.isoformat(), request_duration_ms=200 + 150 * n + 7 * i,
                               success=(i + days_ago) % 4 != 3)  # fmt: skip
                events.append(seeded)
    return events


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    path = Path(tmp_path_factory.mktemp("dashboard")) / "usage.db"
    app = make_app(path)
    alerts = SQLiteAlertLog(str(path))
    alert = Alert("daily-cost", RuleKind.GLOBAL_COST, "global", NOW.date().isoformat(), "AI cost today is over $1",
                  "seeded for the dashboard test")  # fmt: skip
    assert alerts.claim(alert, NOW)
    alerts.mark_sent(alert, NOW, delivered=1, failed=0)
    alerts.close()
    with live_server(app, "wsgi") as server:
        events = _seed_events()
        answer = server.post("/v1/usage/batch", json={"events": events}, headers=SERVER).json()
        assert answer["stored"] == len(events)
        yield server
    app.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,1000", "--force-prefers-reduced-motion", "--lang=en-US"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    try:
        yield driver
    finally:
        driver.quit()


# -- helpers ------------------------------------------------------------------------------------------------
def _settled(driver: Any) -> None:
    """Wait until the page has finished loading (ready or error), then require ready and no banner."""
    try:
        WebDriverWait(driver, WAIT).until(
            lambda d: d.execute_script("return document.body.dataset.state") in ("ready", "error")
        )
    except TimeoutException:
        pytest.fail(f"the dashboard did not settle within {WAIT}s: {_text(driver, 'status')!r}")
    banner = driver.find_element(By.ID, "error-banner")
    assert not banner.is_displayed(), banner.text
    assert driver.execute_script("return document.body.dataset.state") == "ready"


def _no_console_errors(driver: Any) -> None:
    severe = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert severe == [], severe


def _text(driver: Any, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def _value(driver: Any, css: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, css).get_attribute("data-value")


def _shows(text: str, exact: str) -> None:
    """``text`` is the exact amount rounded for display ($x.xx, or $0.xxxx below a dollar)."""
    amount = Decimal(exact)
    assert text.startswith("$"), text
    places = 4 if 0 < abs(amount) < 1 else 2
    assert abs(Decimal(text[1:].replace(",", "")) - amount) <= Decimal(1).scaleb(-places) / 2, (text, exact)


def _screenshot(driver: Any, view: str) -> None:
    """The whole page (beyond the viewport), through the DevTools protocol."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
    })  # fmt: skip
    (SCREENSHOTS / f"{view}.png").write_bytes(base64.b64decode(shot["data"]))


def _check_chart(driver: Any, api: LiveServer, start: str, end: str, tenant: str | None = None) -> list[str]:
    """Bars equal the API's daily series (one per day, stacked parts adding up to it); returns the legend."""
    params = {"interval": "day", "start": f"{start}T00:00:00Z", "end": f"{_next(end)}T00:00:00Z"}
    if tenant:
        params["tenant_id"] = tenant
    points = api.get("/v1/admin/metrics/aggregates", params=params, headers=ADMIN).json()["points"]
    bars = driver.find_elements(By.CSS_SELECTOR, "#chart g.bar")
    assert len(bars) == len(points) == 30
    for bar, point in zip(bars, points, strict=True):
        assert bar.get_attribute("data-day") == point["start"][:10]
        assert Decimal(bar.get_attribute("data-total")) == Decimal(point["cost_usd"])
        assert Decimal(bar.get_attribute("data-sum")) == Decimal(point["cost_usd"])
    heights = [float(r.get_attribute("height")) for r in driver.find_elements(By.CSS_SELECTOR, "#chart rect.seg")]
    assert heights and max(heights) > 20, "a blank chart"
    return [item.text for item in driver.find_elements(By.CSS_SELECTOR, "#legend li")]


def _next(day: str) -> str:
    from datetime import date

    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def _loads(driver: Any) -> int:
    return int(driver.execute_script("return document.body.dataset.loads || '0'"))


def _then_settled(driver: Any, action: Any) -> None:
    """Do ``action`` and wait for the load it starts to finish (the page counts finished loads)."""
    before = _loads(driver)
    action()
    try:
        WebDriverWait(driver, WAIT).until(lambda d: _loads(d) > before)
    except TimeoutException:
        pytest.fail(f"the dashboard did not finish loading within {WAIT}s: {_text(driver, 'status')!r}")
    _settled(driver)


def _restack(driver: Any, view: str) -> None:
    _then_settled(driver, driver.find_element(By.CSS_SELECTOR, f'.switch button[data-view="{view}"]').click)
    assert driver.find_element(By.ID, "chart").get_attribute("data-view") == view


# -- the test -------------------------------------------------------------------------------------------------
def test_the_dashboard_shows_the_apis_figures_in_a_real_browser(api: LiveServer, browser: Any) -> None:
    today = NOW.date().isoformat()
    start = (NOW.date() - timedelta(days=29)).isoformat()
    browser.get(api.url + "/dashboard")
    browser.find_element(By.ID, "admin-key").send_keys(ADMIN_KEY)
    _then_settled(browser, browser.find_element(By.ID, "sign-in").click)

    # The range defaults to the server's last 30 days, whatever the browser's clock says.
    assert (browser.find_element(By.ID, "start").get_attribute("value"), browser.find_element(By.ID, "end")
            .get_attribute("value")) == (start, today)  # fmt: skip
    week = api.get("/v1/admin/metrics/aggregates", params={"interval": "day"}, headers=ADMIN).json()["points"]
    assert _value(browser, "#kpi-cost-today") == week[-1]["cost_usd"]
    _shows(_text(browser, "kpi-cost-today"), week[-1]["cost_usd"])
    assert _text(browser, "kpi-requests-today") == str(week[-1]["requests"])
    assert "yesterday" in _text(browser, "kpi-cost-delta")

    rng = {"start": start, "end": today}
    top = api.get("/v1/admin/top/players", params={**rng, "limit": 10}, headers=ADMIN).json()["players"]
    first = browser.find_elements(By.CSS_SELECTOR, "#top-players tbody tr")[0].find_elements(By.TAG_NAME, "td")
    assert [first[0].text, first[1].text] == [top[0]["user_id"], top[0]["tenant_id"]] == ["whale", "studio-a"]
    assert first[3].get_attribute("data-value") == top[0]["cost_usd"]

    latency = api.get("/v1/admin/performance/latency", params=rng, headers=ADMIN).json()["by_provider"]
    p95 = browser.find_element(By.CSS_SELECTOR, '#latency td[data-provider="anthropic"][data-stat="p95"]')
    assert float(p95.get_attribute("data-value")) == latency["anthropic"]["p95"]
    assert p95.text == f"{latency['anthropic']['p95']:.1f} ms"
    errors = api.get("/v1/admin/errors/by-provider", params=rng, headers=ADMIN).json()["by_provider"]
    rate = browser.find_element(By.CSS_SELECTOR, '#latency td[data-provider="openai"][data-stat="error_rate"]')
    assert float(rate.get_attribute("data-value")) == errors["openai"]["error_rate"] > 0

    day = api.get("/v1/admin/cost/daily", params={"date": today}, headers=ADMIN).json()
    assert _text(browser, "unpriced-requests") == str(day["unpriced_requests"]) != "0"
    assert [m.text for m in browser.find_elements(By.CSS_SELECTOR, "#unpriced td[data-model]")] == ["mystery-model-x"]
    assert "AI cost today is over $1" in _text(browser, "alerts")

    providers = api.get("/v1/admin/costs/by-provider", params=rng, headers=ADMIN).json()["items"]
    assert _check_chart(browser, api, start, today) == list(providers)
    _no_console_errors(browser)
    _screenshot(browser, "provider")

    _restack(browser, "model")
    models = api.get("/v1/admin/costs/by-model", params=rng, headers=ADMIN).json()["items"]
    assert _check_chart(browser, api, start, today) == list(models)
    _screenshot(browser, "model")

    _restack(browser, "task")
    assert sorted(_check_chart(browser, api, start, today)) == sorted(
        ["story_progression", "npc_dialogue", "combat_narration", "quest_selection"]
    )
    _screenshot(browser, "task")
    _no_console_errors(browser)

    # A tenant: every figure is that tenant's.
    browser.find_element(By.ID, "tenant").send_keys("studio-b")
    _then_settled(browser, browser.find_element(By.ID, "apply").click)
    tenant_week = api.get("/v1/admin/metrics/aggregates", params={"interval": "day", "tenant_id": "studio-b"},
                          headers=ADMIN).json()["points"]  # fmt: skip
    assert _value(browser, "#kpi-cost-today") == tenant_week[-1]["cost_usd"] != week[-1]["cost_usd"]
    tenant_day = api.get("/v1/tenants/studio-b/usage/daily", params={"date": today}, headers=ADMIN).json()
    assert _text(browser, "unpriced-requests") == str(tenant_day["unpriced_requests"])
    assert sorted(_check_chart(browser, api, start, today, "studio-b")) == ["combat_narration", "quest_selection"]
    _no_console_errors(browser)
    _screenshot(browser, "tenant")

    # A phone: the page reflows to its width (nothing wider than the screen) and the chart still draws.
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})  # fmt: skip
    try:
        browser.refresh()  # the key stays in the tab's sessionStorage
        WebDriverWait(browser, WAIT).until(lambda d: _loads(d) > 0)
        _settled(browser)
        assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
        chart = browser.find_element(By.CSS_SELECTOR, "#chart svg")
        assert 300 <= chart.size["width"] <= 390 and chart.size["height"] > 100
        tenant = browser.find_element(By.ID, "tenant").get_attribute("value")  # a reload may keep the field
        _check_chart(browser, api, start, today, tenant or None)
        _screenshot(browser, "phone")
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    _no_console_errors(browser)


def test_an_empty_ledger_shows_zeros_and_an_empty_chart_without_an_error(browser: Any, tmp_path: Path) -> None:
    app = make_app(tmp_path / "usage.db")
    with live_server(app, "wsgi") as empty:
        browser.get(empty.url + "/dashboard")
        browser.execute_script("sessionStorage.clear()")
        browser.refresh()
        browser.find_element(By.ID, "admin-key").send_keys(ADMIN_KEY)
        _then_settled(browser, browser.find_element(By.ID, "sign-in").click)

        assert (_text(browser, "kpi-cost-today"), _text(browser, "kpi-requests-today")) == ("$0.00", "0")
        assert len(browser.find_elements(By.CSS_SELECTOR, "#chart g.bar")) == 30
        assert browser.find_elements(By.CSS_SELECTOR, "#chart rect.seg") == []
        assert "No cost in this range" in browser.find_element(By.ID, "chart").text
        assert "No alert has been sent." in _text(browser, "alerts")
        _no_console_errors(browser)
        _screenshot(browser, "empty")
    app.close()
