"use strict";
// The admin dashboard's script: reads the documented JSON routes and draws them. Served by `ai-usage serve`, it reads
// them from this origin with the admin key; served by the usage-dashboard Appwrite function (the page then carries
// meta tags naming the Appwrite endpoint, project and admin function), it signs the admin in with Appwrite and reads
// each route through an execution of the admin function, which Appwrite runs only for users it admits.
// Money arrives as exact decimal strings; sums are done in BigInt (1e-18 USD units) and rounded only for display.
// Every value from the server reaches the page as text (textContent), never as markup.
(() => {
  const KEY_STORE = "ai-usage-admin-key";
  const MAX_SERIES = 6; // stacked series drawn by name; the rest of the cost is one "Other" segment
  const MAX_PRICED_MODELS = 25; // models whose price is looked up for the "unpriced" list
  const RANGE_DAYS = 30;
  const MAX_RANGE_DAYS = 366;
  const PALETTE = ["#2456d6", "#e07b17", "#1b9e77", "#c2388f", "#7b5cd6", "#c9a400"];
  const OTHER_COLOR = "#9aa3b5";
  // SVG's namespace, read off a parsed <svg> so the page's text holds no URL at all
  const SVG = (() => { const box = document.createElement("div"); box.innerHTML = "<svg></svg>"; return box.firstChild.namespaceURI; })();
  const ONE = 10n ** 18n;

  const SESSION_STORE = "ai-usage-appwrite-session";
  const APPWRITE = (() => {
    const meta = (name) => (document.querySelector(`meta[name="${name}"]`) || {}).content || "";
    const endpoint = meta("appwrite-endpoint");
    return endpoint ? { endpoint, project: meta("appwrite-project"), fn: meta("appwrite-function") } : null;
  })();
  const SESSION_ENDED = "Your Appwrite session has ended. Sign in again.";

  const $ = (id) => document.getElementById(id);
  const state = { key: null, fallback: null, renewing: null, view: "provider", today: null, generation: 0 };
  if (!APPWRITE) state.key = sessionStorage.getItem(KEY_STORE);
  else {
    // key: the JWT executions carry; fallback: the session as Appwrite hands it over when its cookie may be refused
    try {
      const saved = JSON.parse(sessionStorage.getItem(SESSION_STORE) || "{}");
      state.key = typeof saved.jwt === "string" ? saved.jwt : null;
      state.fallback = typeof saved.fallback === "string" ? saved.fallback : null;
    } catch {
      sessionStorage.removeItem(SESSION_STORE);
    }
  }

  class AuthError extends Error {} // the page cannot read with these credentials: back to the sign-in form
  class AppwriteError extends Error {
    constructor(status, type, message) {
      super(message);
      this.status = status;
      this.type = type;
    }
  }

  // -- money, numbers, days ------------------------------------------------------------------------------
  function atto(text) {
    const s = String(text ?? "0").trim();
    const negative = s.startsWith("-");
    const [whole, fraction = ""] = (negative ? s.slice(1) : s).split(".");
    const value = BigInt(whole || "0") * ONE + BigInt((fraction + "0".repeat(18)).slice(0, 18));
    return negative ? -value : value;
  }
  function exactText(value) {
    const negative = value < 0n;
    const v = negative ? -value : value;
    const fraction = (v % ONE).toString().padStart(18, "0").replace(/0+$/, "");
    return (negative ? "-" : "") + (v / ONE).toString() + (fraction ? "." + fraction : "");
  }
  function usd(value) {
    const n = Number(value) / 1e18; // display only
    const abs = Math.abs(n);
    const digits = abs !== 0 && abs < 1 ? 4 : 2;
    const text = abs.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
    return (n < 0 ? "-$" : "$") + text;
  }
  const count = (n) => Number(n).toLocaleString("en-US");
  const ms = (v) => (v === null || v === undefined ? "–" : v.toFixed(1) + " ms");
  const percent = (v) => (v === null || v === undefined ? "–" : v.toFixed(1) + "%");
  function addDays(day, n) {
    const d = new Date(day + "T00:00:00Z");
    d.setUTCDate(d.getUTCDate() + n);
    return d.toISOString().slice(0, 10);
  }
  const dayCount = (start, end) => Math.round((Date.parse(end) - Date.parse(start)) / 86400000) + 1;

  // -- the API ---------------------------------------------------------------------------------------------
  async function api(path, params = {}) {
    const url = new URL(path, document.baseURI);
    for (const [name, value] of Object.entries(params)) {
      if (value !== null && value !== undefined && value !== "") url.searchParams.set(name, value);
    }
    if (APPWRITE) return execute(url);
    const response = await fetch(url, { headers: { Authorization: "Bearer " + state.key, Accept: "application/json" } });
    if (response.status === 401) throw new AuthError("The server refused this key. Check AI_USAGE_ADMIN_KEY.");
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      const detail = body && body.error ? body.error.message : response.statusText;
      throw new Error(`${url.pathname}: ${response.status} ${detail}`);
    }
    return body;
  }

  // -- Appwrite: the account API signs the admin in, the executions API runs the admin function as them -----------
  async function appwrite(method, path, { body, jwt, session = false } = {}) {
    const headers = { "X-Appwrite-Project": APPWRITE.project, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (jwt) headers["X-Appwrite-JWT"] = jwt;
    if (session && state.fallback) headers["X-Fallback-Cookies"] = state.fallback;
    // Only the session routes send the session cookie: Appwrite refuses a request carrying a JWT and a session.
    const response = await fetch(APPWRITE.endpoint + path, {
      method, headers, credentials: session ? "include" : "omit",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) {
      throw new AppwriteError(response.status, (data && data.type) || "", (data && data.message) || response.statusText);
    }
    return { data, headers: response.headers };
  }
  const newSession = (email, password) =>
    appwrite("POST", "/account/sessions/email", { session: true, body: { email, password } });

  async function signInWithAppwrite(email, password) {
    let created;
    try {
      created = await newSession(email, password);
    } catch (error) {
      if (error.type !== "user_session_already_exists") throw error;
      // A session this browser kept from an earlier visit (closed without signing out): end it, sign in as asked.
      await appwrite("DELETE", "/account/sessions/current", { session: true });
      created = await newSession(email, password);
    }
    // Sent when Appwrite is on another site than this page, where the browser may refuse its cookie.
    state.fallback = created.headers.get("X-Fallback-Cookies") || null;
    await mintJwt();
  }
  async function mintJwt() {
    const { data } = await appwrite("POST", "/account/jwts", { session: true, body: {} });
    state.key = data.jwt; // valid 15 minutes; renewed from the session when an execution finds it expired
    sessionStorage.setItem(SESSION_STORE, JSON.stringify({ jwt: state.key, fallback: state.fallback }));
  }
  function renewJwt(stale) {
    if (state.key !== stale) return Promise.resolve(); // another read renewed it meanwhile
    state.renewing = state.renewing || mintJwt()
      .catch(() => { throw new AuthError(SESSION_ENDED); })
      .finally(() => { state.renewing = null; });
    return state.renewing;
  }
  function explain(error) {
    if (!(error instanceof AppwriteError)) return error;
    if (error.type === "user_unauthorized") {
      return new AuthError("Appwrite refused to run the admin function for this account: only users with the " +
        `admin label may (${error.message})`);
    }
    if (error.type === "user_jwt_invalid") return new AuthError(SESSION_ENDED);
    return new Error(`Appwrite answered ${error.status} ${error.type}: ${error.message}`);
  }

  async function execute(url) {
    // One synchronous execution per route: the admin function answers the same path and query as the server would.
    const run = (jwt) => appwrite("POST", `/functions/${encodeURIComponent(APPWRITE.fn)}/executions`,
      { jwt, body: { path: url.pathname + url.search, method: "GET", async: false } });
    const jwt = state.key;
    let execution;
    try {
      execution = (await run(jwt)).data;
    } catch (error) {
      if (!(error instanceof AppwriteError && error.type === "user_jwt_invalid")) throw explain(error);
      await renewJwt(jwt);
      execution = await run(state.key).then((r) => r.data, (again) => { throw explain(again); });
    }
    const status = execution.responseStatusCode;
    if (status === 401) throw new AuthError("The admin function found no signed-in user (401). Sign in again.");
    let body = null;
    try {
      body = JSON.parse(execution.responseBody);
    } catch {
      body = null;
    }
    if (status < 200 || status > 299) {
      const detail = body && body.error ? body.error.message : `execution ${execution.status}`;
      throw new Error(`${url.pathname}: ${status} ${detail}`);
    }
    return body;
  }
  const filters = () => ({ start: $("start").value, end: $("end").value, tenant: $("tenant").value.trim() });
  const range = (f) => ({ start: f.start, end: f.end, tenant_id: f.tenant });
  const series = (f, extra = {}) =>
    api("v1/admin/metrics/aggregates", {
      interval: "day", start: f.start + "T00:00:00Z", end: addDays(f.end, 1) + "T00:00:00Z", tenant_id: f.tenant,
      ...extra,
    });

  // -- DOM helpers -----------------------------------------------------------------------------------------
  function el(tag, attrs = {}, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function svg(tag, attrs = {}, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }
  // columns: [{title, num}], rows: arrays of cells; a cell is text or {text, attrs}
  function table(target, columns, rows, empty) {
    target.replaceChildren();
    if (!rows.length) return target.append(el("p", { class: "none" }, empty));
    const head = el("tr");
    for (const c of columns) head.append(el("th", c.num ? { class: "num" } : {}, c.title));
    const body = el("tbody");
    for (const row of rows) {
      const tr = el("tr");
      row.forEach((cell, i) => {
        const { text, attrs = {} } = typeof cell === "object" ? cell : { text: cell };
        tr.append(el("td", { class: columns[i].num ? "num" : "text", ...attrs }, String(text)));
      });
      body.append(tr);
    }
    const t = el("table");
    t.append(el("thead"), body);
    t.tHead.append(head);
    target.append(t);
  }
  function setValue(id, text, value) {
    $(id).textContent = text;
    $(id).dataset.value = value;
  }
  function delta(id, today, yesterday, label) {
    const node = $(id);
    node.classList.remove("up", "down");
    if (yesterday === 0n) return (node.textContent = `yesterday: ${label(yesterday)}`);
    const change = (Number(today - yesterday) / Number(yesterday)) * 100;
    node.classList.add(change > 0 ? "up" : "down");
    node.textContent = `${change > 0 ? "+" : ""}${change.toFixed(1)}% vs ${label(yesterday)} yesterday`;
  }

  // -- sections ---------------------------------------------------------------------------------------------
  async function loadToday(f) {
    // The server's own clock says what today is: the default series ends with the current day.
    const week = await api("v1/admin/metrics/aggregates", { interval: "day", tenant_id: f.tenant });
    const [yesterday, today] = week.points.slice(-2);
    setValue("kpi-cost-today", usd(atto(today.cost_usd)), today.cost_usd);
    setValue("kpi-requests-today", count(today.requests), today.requests);
    delta("kpi-cost-delta", atto(today.cost_usd), atto(yesterday.cost_usd), usd);
    delta("kpi-requests-delta", BigInt(today.requests), BigInt(yesterday.requests), count);
  }

  async function stackKeys(f) {
    if (state.view === "task") {
      const ops = await api("v1/admin/top/operations", { ...range(f), limit: 1000 });
      const byTask = new Map();
      for (const op of ops.operations) byTask.set(op.task_type, (byTask.get(op.task_type) || 0n) + atto(op.cost_usd));
      return { param: "task_type", keys: [...byTask].filter(([, c]) => c > 0n).sort((a, b) => (b[1] > a[1] ? 1 : -1)) };
    }
    const path = state.view === "model" ? "v1/admin/costs/by-model" : "v1/admin/costs/by-provider";
    const found = await api(path, range(f));
    const keys = Object.entries(found.items).map(([k, s]) => [k, atto(s.cost_usd)]).filter(([, c]) => c > 0n);
    return { param: state.view, keys: keys.sort((a, b) => (b[1] > a[1] ? 1 : -1)) };
  }

  async function loadChart(f, generation) {
    const [total, stack] = await Promise.all([series(f), stackKeys(f)]);
    const named = stack.keys.slice(0, MAX_SERIES).map(([name]) => name);
    const parts = await Promise.all(named.map((name) => series(f, { [stack.param]: name })));
    if (generation !== state.generation) return;
    const days = total.points.map((p) => ({ day: p.start.slice(0, 10), exact: p.cost_usd, total: atto(p.cost_usd) }));
    const layers = named.map((name, i) => {
      const byDay = new Map(parts[i].points.map((p) => [p.start.slice(0, 10), atto(p.cost_usd)]));
      return { name, color: PALETTE[i], values: days.map((d) => byDay.get(d.day) || 0n) };
    });
    const other = days.map((d, i) => layers.reduce((rest, layer) => rest - layer.values[i], d.total));
    if (other.some((v) => v > 0n)) layers.push({ name: "Other", color: OTHER_COLOR, values: other });
    drawChart(days, layers);
    drawLegend(layers);
    setValue("kpi-cost-range", usd(atto(total.total.cost_usd)), total.total.cost_usd);
    $("kpi-range-label").textContent = `${f.start} to ${f.end} · ${count(total.total.requests)} requests`;
  }

  function drawChart(days, layers) {
    // Drawn at the container's own width, so the axis text stays readable on a phone as on a laptop.
    const chart = $("chart");
    const W = Math.max(300, Math.min(1200, Math.round(chart.clientWidth || 760)));
    const H = W < 520 ? 220 : 280, left = 62, right = 8, top = 12, bottom = 28;
    const plotW = W - left - right, plotH = H - top - bottom;
    const max = days.reduce((m, d) => (d.total > m ? d.total : m), 0n);
    const yMax = niceCeiling(Number(max) / 1e18);
    chart.dataset.view = state.view;
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `Cost per day by ${state.view}` });
    for (let i = 0; i <= (yMax ? 4 : 0); i++) { // an empty range gets its baseline only
      const y = top + plotH - (plotH * i) / 4;
      root.append(svg("line", { class: "grid-line", x1: left, x2: W - right, y1: y, y2: y }));
      root.append(svg("text", { class: "axis", x: left - 6, y: y + 4, "text-anchor": "end" }, usd(BigInt(Math.round((yMax * i) / 4 * 1e6)) * 10n ** 12n)));
    }
    const band = plotW / Math.max(days.length, 1);
    const labelEvery = Math.ceil(days.length / Math.max(3, Math.floor(plotW / 90)));
    days.forEach((d, i) => {
      const x = left + band * i + band * 0.14;
      const g = svg("g", { class: "bar", "data-day": d.day, "data-total": d.exact });
      let y = top + plotH, sum = 0n;
      const lines = [`${d.day}: ${usd(d.total)}`];
      for (const layer of layers) {
        const v = layer.values[i];
        sum += v;
        if (v <= 0n || yMax === 0) continue;
        const h = ((Number(v) / 1e18) / yMax) * plotH;
        y -= h;
        g.append(svg("rect", { class: "seg", x: x.toFixed(2), y: y.toFixed(2), width: (band * 0.72).toFixed(2),
          height: h.toFixed(2), fill: layer.color, "data-series": layer.name }));
        lines.push(`${layer.name}: ${usd(v)}`);
      }
      g.setAttribute("data-sum", exactText(sum));
      g.append(svg("title", {}, lines.join("\n")));
      root.append(g);
      if (i % labelEvery === 0) {
        root.append(svg("text", { class: "axis", x: x + band * 0.36, y: H - 8, "text-anchor": "middle" }, d.day.slice(5)));
      }
    });
    if (max === 0n) root.append(svg("text", { class: "empty", x: W / 2, y: H / 2, "text-anchor": "middle" }, "No cost in this range"));
    chart.replaceChildren(root);
  }
  function niceCeiling(v) {
    if (v <= 0) return 0;
    const step = 10 ** Math.floor(Math.log10(v));
    return [1, 2, 2.5, 5, 10].map((m) => m * step).find((c) => c >= v);
  }
  function drawLegend(layers) {
    const legend = $("legend");
    legend.replaceChildren();
    for (const layer of layers) {
      const swatch = el("span", { class: "swatch" });
      swatch.style.background = layer.color; // CSSOM, which the page's style policy allows
      const item = el("li", { "data-series": layer.name });
      item.append(swatch, document.createTextNode(layer.name));
      legend.append(item);
    }
  }

  async function loadTables(f) {
    const [players, ops, latency, errors] = await Promise.all([
      api("v1/admin/top/players", { ...range(f), limit: 10 }),
      api("v1/admin/top/operations", { ...range(f), limit: 10 }),
      api("v1/admin/performance/latency", range(f)),
      api("v1/admin/errors/by-provider", range(f)),
    ]);
    table($("top-players"), [{ title: "Player" }, { title: "Tenant" }, { title: "Requests", num: 1 }, { title: "Cost", num: 1 }],
      players.players.map((p) => [p.user_id, p.tenant_id ?? "default", count(p.requests),
        { text: usd(atto(p.cost_usd)), attrs: { "data-value": p.cost_usd } }]), "No requests in this range.");
    table($("top-operations"), [{ title: "Task type" }, { title: "Provider" }, { title: "Requests", num: 1 },
      { title: "Failed", num: 1 }, { title: "Cost", num: 1 }],
      ops.operations.map((o) => [o.task_type, o.provider, count(o.requests), count(o.failed_requests),
        { text: usd(atto(o.cost_usd)), attrs: { "data-value": o.cost_usd } }]), "No requests in this range.");
    const providers = [...new Set([...Object.keys(latency.by_provider), ...Object.keys(errors.by_provider)])];
    const stat = (provider, name, value, text) => ({ text, attrs: { "data-provider": provider, "data-stat": name, "data-value": value ?? "" } });
    table($("latency"), [{ title: "Provider" }, { title: "Requests", num: 1 }, { title: "p50", num: 1 }, { title: "p95", num: 1 },
      { title: "p99", num: 1 }, { title: "Error rate", num: 1 }],
      providers.map((p) => {
        const l = latency.by_provider[p] || {}, e = errors.by_provider[p];
        return [p, count(e ? e.requests : l.requests || 0), stat(p, "p50", l.p50, ms(l.p50)), stat(p, "p95", l.p95, ms(l.p95)),
          stat(p, "p99", l.p99, ms(l.p99)), stat(p, "error_rate", e && e.error_rate, percent(e && e.error_rate))];
      }), "No requests in this range.");
  }

  async function loadUnpriced(f) {
    const day = f.tenant
      ? api(`v1/tenants/${encodeURIComponent(f.tenant)}/usage/daily`, { date: f.end })
      : api("v1/admin/cost/daily", { date: f.end });
    const [summary, models] = await Promise.all([day, api("v1/admin/costs/by-model", range(f))]);
    const names = Object.keys(models.items).slice(0, MAX_PRICED_MODELS);
    const prices = await Promise.all(names.map((m) => api("v1/prices/" + m.split("/").map(encodeURIComponent).join("/"))));
    const target = $("unpriced");
    target.replaceChildren();
    const counts = el("div", { class: "counts" });
    for (const [id, label, value] of [["unpriced-requests", "priced by a fallback", summary.unpriced_requests],
      ["other-host-requests", "priced at another host's rate", summary.other_host_requests]]) {
      const box = el("div");
      box.append(el("strong", { id, "data-value": value }, count(value)), document.createTextNode(`requests ${label} on ${f.end}`));
      counts.append(box);
    }
    target.append(counts);
    const fallback = names.filter((_, i) => prices[i].is_default);
    const list = el("div", { class: "table-wrap" });
    table(list, [{ title: "Model at the default price" }, { title: "Requests in range", num: 1 }],
      fallback.map((m) => [{ text: m, attrs: { "data-model": m } }, count(models.items[m].requests)]),
      "Every model in this range has a price.");
    target.append(list);
  }

  async function loadAlerts() {
    const found = await api("v1/admin/alerts", { limit: 10 });
    table($("alerts"), [{ title: "When (UTC)" }, { title: "Status" }, { title: "Rule" }, { title: "Scope" }, { title: "Alert" }],
      found.alerts.map((a) => [(a.sent_at || a.claimed_at).slice(0, 16).replace("T", " "), a.status, a.rule, a.scope, a.title]),
      "No alert has been sent.");
  }

  // -- running it ------------------------------------------------------------------------------------------
  function validate(f) {
    if (!f.start || !f.end) return "choose both dates";
    if (f.start > f.end) return "the start date must be on or before the end date";
    if (dayCount(f.start, f.end) > MAX_RANGE_DAYS) return `the range may cover at most ${MAX_RANGE_DAYS} days`;
    return null;
  }

  async function refresh(only) {
    const generation = ++state.generation;
    document.body.dataset.state = "loading";
    $("status").textContent = "Loading…";
    const errors = [];
    try {
      if (!state.today) {
        const week = await api("v1/admin/metrics/aggregates", { interval: "day" });
        state.today = week.points[week.points.length - 1].start.slice(0, 10);
        if (!$("end").value) $("end").value = state.today;
        if (!$("start").value) $("start").value = addDays($("end").value, -(RANGE_DAYS - 1));
      }
      const f = filters();
      const invalid = validate(f);
      if (invalid) throw new Error(invalid);
      const tasks = only === "chart" ? [loadChart(f, generation)]
        : [loadToday(f), loadChart(f, generation), loadTables(f), loadUnpriced(f), loadAlerts()];
      for (const outcome of await Promise.allSettled(tasks)) if (outcome.status === "rejected") errors.push(outcome.reason);
    } catch (error) {
      errors.push(error);
    }
    if (generation !== state.generation) return;
    const refused = errors.find((e) => e instanceof AuthError);
    if (refused) return signOut(refused.message);
    const banner = $("error-banner");
    banner.hidden = errors.length === 0;
    banner.textContent = errors.map((e) => "Could not load: " + e.message).join("\n");
    document.body.dataset.state = errors.length ? "error" : "ready";
    document.body.dataset.loads = String(Number(document.body.dataset.loads || 0) + 1); // finished loads, for tests
    $("status").textContent = `Updated ${new Date().toISOString().slice(11, 19)} UTC · server day ${state.today}`;
  }

  function showDashboard() {
    document.body.dataset.state = "loading";
    $("login").hidden = true;
    $("dashboard").hidden = false;
    refresh();
  }
  function signOut(message) {
    state.generation++;
    if (APPWRITE && (state.key || state.fallback)) {
      // The session ends on Appwrite too (best effort: the tab forgets it either way).
      appwrite("DELETE", "/account/sessions/current", { session: true }).catch(() => {});
    }
    state.key = null;
    state.fallback = null;
    sessionStorage.removeItem(KEY_STORE);
    sessionStorage.removeItem(SESSION_STORE);
    document.body.dataset.state = "signed-out";
    $("dashboard").hidden = true;
    $("error-banner").hidden = true;
    $("login").hidden = false;
    $("login-message").hidden = !message;
    $("login-message").textContent = message || "";
    $(APPWRITE ? "email" : "admin-key").focus();
  }

  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (APPWRITE) {
      const email = $("email").value.trim();
      const password = $("password").value;
      if (!email || !password) return;
      $("sign-in").disabled = true;
      try {
        await signInWithAppwrite(email, password);
      } catch (error) {
        $("login-message").hidden = false;
        $("login-message").textContent = error.type === "user_invalid_credentials"
          ? "Appwrite refused this email and password." : "Could not sign in: " + error.message;
        return;
      } finally {
        $("sign-in").disabled = false;
      }
      $("password").value = "";
      return showDashboard();
    }
    const key = $("admin-key").value.trim();
    if (!key) return;
    state.key = key;
    sessionStorage.setItem(KEY_STORE, key);
    $("admin-key").value = "";
    showDashboard();
  });
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    refresh();
  });
  $("sign-out").addEventListener("click", () => signOut());
  for (const button of document.querySelectorAll(".switch button")) {
    button.addEventListener("click", () => {
      state.view = button.dataset.view;
      for (const b of document.querySelectorAll(".switch button")) b.setAttribute("aria-pressed", String(b === button));
      refresh("chart");
    });
  }
  if (APPWRITE) {
    $("key-fields").hidden = true;
    $("admin-key").disabled = true; // a disabled field is neither required nor sent
    $("appwrite-fields").hidden = false;
    $("email").disabled = $("password").disabled = false;
    $("appwrite-host").textContent = new URL(APPWRITE.endpoint).host;
  }
  if (state.key) showDashboard();
  else signOut();
})();
