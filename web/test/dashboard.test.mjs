// The dashboard in Debian's Chromium, driven by playwright-core, against the real server and
// agents that tests/browser_test.cpp started (it passes them in EDGELOOP_BROWSER_CONFIG):
//   node --test test/dashboard.test.mjs
// The tests run in order and share one browser. Screenshots (1280 and 390 px wide) go to the
// config's `out` folder. Every page load also records Content-Security-Policy violations and
// dialogs: the XSS test requires none, and that no payload set anything on window.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const cfg = JSON.parse(readFileSync(process.env.EDGELOOP_BROWSER_CONFIG, "utf8"));
const UI = `${cfg.base}/ui/`;
const WIDE = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };
let browser;
let admin;   // the admin's page, signed in
let rolloutId;

async function newPage() {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: WIDE });
  const page = await context.newPage();
  page.problems = [];
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener("securitypolicyviolation", (e) =>
      window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  page.on("dialog", async (d) => { page.problems.push(`dialog: ${d.message()}`); await d.dismiss(); });
  page.on("pageerror", (e) => page.problems.push(`page error: ${e.message}`));
  page.on("request", (r) => {
    if (!r.url().startsWith(cfg.base) && !r.url().startsWith("data:"))
      page.problems.push(`request to another host: ${r.url()}`);
    if (r.url().includes(cfg.admin_token) || r.url().includes(cfg.read_token))
      page.problems.push(`token in a URL: ${r.url()}`);
  });
  return page;
}

async function signIn(page, token) {
  const res = await page.goto(UI);
  await page.fill("#token", token);
  await page.click("form.signin button[type=submit]");
  await page.waitForSelector("nav.top");
  return res;
}

async function shot(page, name, size = WIDE) {
  await page.setViewportSize(size);
  await page.waitForTimeout(300);  // charts follow the width
  await page.screenshot({ path: join(cfg.out, `${name}-${size.width}.png`), fullPage: true });
}

async function apiStatus(page, method, path, token) {
  return page.evaluate(async ([m, p, t]) => {
    const r = await fetch(p, { method: m, headers: { Authorization: `Bearer ${t}`, "Content-Type": "application/json" }, body: m === "POST" ? "{}" : undefined });
    return { status: r.status, body: await r.json().catch(() => null) };
  }, [method, path, token]);
}

async function rolloutStatus(page) {
  return (await page.textContent("#rollout-status")).trim();
}

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
});

after(async () => {
  if (browser) await browser.close();
});

test("the dashboard is served with a strict Content-Security-Policy", async () => {
  const page = await newPage();
  const res = await page.goto(UI);
  const csp = res.headers()["content-security-policy"];
  assert.ok(csp, "no Content-Security-Policy header");
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.equal(res.headers()["x-content-type-options"], "nosniff");
  await page.context().close();
});

test("sign in with the admin token, kept in session storage only", async () => {
  admin = await newPage();
  await signIn(admin, cfg.admin_token);
  assert.equal((await admin.textContent("#scope")).trim(), "admin");
  assert.equal(await admin.evaluate(() => sessionStorage.getItem("edgeloop.token")), cfg.admin_token);
  assert.equal(await admin.evaluate(() => localStorage.length), 0);
  assert.ok(!admin.url().includes(cfg.admin_token));
});

test("the fleet lists every device, filters and sorts", async () => {
  await admin.goto(`${UI}#/fleet`);
  for (const d of cfg.devices)
    await admin.waitForSelector(`#fleet-table tr[data-key="${d}"]`);
  // The reporting devices run the production model and show their labels.
  await admin.waitForFunction(() => {
    const row = document.querySelector('#fleet-table tr[data-key="dev-1"]');
    return row && row.textContent.includes("clf:1") && row.textContent.includes("site-a") && !row.textContent.includes("never");
  });
  await admin.fill("#fleet-search", "dev-2");
  await admin.waitForFunction(() => document.querySelectorAll("#fleet-table tbody tr").length === 1);
  assert.ok(await admin.isVisible('#fleet-table tr[data-key="dev-2"]'));
  await admin.fill("#fleet-search", "");
  await admin.selectOption("#fleet-group", "line-a");
  await admin.waitForFunction(() => document.querySelectorAll("#fleet-table tbody tr").length === 2);
  await admin.selectOption("#fleet-group", "");
  // Sorted by device id, then reversed by a second click on its header.
  const order = () => admin.$$eval("#fleet-table tbody tr", (rs) => rs.map((r) => r.dataset.key));
  await admin.waitForFunction((n) => document.querySelectorAll("#fleet-table tbody tr").length === n, cfg.devices.length);
  const up = await order();
  assert.deepEqual(up, [...up].sort());
  await admin.click("#fleet-table th:has-text('Device')");
  assert.deepEqual(await order(), [...up].reverse());
  await admin.click("#fleet-table th:has-text('Device')");
  await admin.waitForFunction(() => document.querySelector("#fleet-summary").textContent.includes("3devices"));
  await shot(admin, "fleet", WIDE);
  await shot(admin, "fleet", PHONE);
  await admin.setViewportSize(WIDE);
});

test("a device's charts: accuracy, latency, drift and spool over time", async () => {
  await admin.click('#fleet-table a:has-text("dev-1")');
  await admin.waitForURL(/#\/devices\/dev-1$/);
  await admin.waitForSelector("#device-charts .chart canvas");
  assert.equal(await admin.locator("#device-charts .chart").count(), 4);
  // uPlot's legend shows the series; the history has points (live polling adds more).
  await admin.waitForFunction(async () => {
    const r = await fetch("/v1/fleet/devices/dev-1/telemetry", { headers: { Authorization: `Bearer ${sessionStorage.getItem("edgeloop.token")}` } });
    return (await r.json()).points.length >= 3;
  });
  for (const title of ["Accuracy", "Latency", "Drift", "Spool"])
    assert.ok(await admin.isVisible(`.chart[data-chart="${title}"] .u-title`), title);
  assert.match(await admin.textContent("#device-summary"), /clf:1/);
  await admin.waitForTimeout(2500);  // one more poll: the charts grow
  await shot(admin, "device", WIDE);
  await shot(admin, "device", PHONE);
  await admin.setViewportSize(WIDE);
});

test("the models page shows versions, lineage and champion against challenger", async () => {
  await admin.goto(`${UI}#/models/${cfg.model}`);
  await admin.waitForSelector(`#model-lineage [data-node="${cfg.model}:1"]`);
  await admin.waitForSelector(`#model-lineage [data-node="${cfg.model}:2"]`);
  // clf:2 hangs under clf:1 in the graph.
  assert.equal(await admin.locator(`#model-lineage li:has(> [data-node="${cfg.model}:1"]) [data-node="${cfg.model}:2"]`).count(), 1);
  await admin.waitForSelector("#model-compare table");
  const compare = await admin.textContent("#model-compare");
  assert.match(compare, /Champion: v1 \(production\)/);
  assert.match(compare, /Challenger: v2/);
  assert.match(compare, /accuracy/);
  await admin.waitForSelector("#model-card dl");
  await shot(admin, "models", WIDE);
});

test("start, pause and abort a rollout from the page", async () => {
  await admin.goto(`${UI}#/rollouts`);
  await admin.waitForSelector(`#ro-model option[value="${cfg.model}"]`, { state: "attached" });
  await admin.selectOption("#ro-model", cfg.model);
  await admin.waitForSelector(`#ro-version option[value="${cfg.rollout_version}"]`, { state: "attached" });
  await admin.selectOption("#ro-version", String(cfg.rollout_version));
  await admin.fill("#ro-target", cfg.rollout_target);
  await admin.fill("#ro-canary", "1");
  await admin.fill("#ro-window", "60");
  await admin.click("#ro-start");
  await admin.waitForURL(/#\/rollouts\/ro-/);
  rolloutId = decodeURIComponent(admin.url().split("/").pop());
  await admin.waitForFunction(() => document.querySelector("#rollout-status")?.textContent.trim() === "running");
  // The canary stage starts: its device is given the new model and installs it.
  await admin.waitForFunction(() => document.querySelector('#rollout-stages [data-stage="canary"] .badge')?.textContent === "running", null, { timeout: 20000 });
  await admin.waitForFunction(() => /updated/.test(document.querySelector(".rollout-devices")?.textContent || ""), null, { timeout: 30000 });
  await admin.click("#ro-pause");
  await admin.waitForFunction(() => document.querySelector("#rollout-status")?.textContent.trim() === "paused");
  assert.equal((await apiStatus(admin, "GET", `/v1/rollouts/${rolloutId}`, cfg.admin_token)).body.status, "paused");
  assert.ok(await admin.isEnabled("#ro-resume"));
  assert.ok(await admin.isDisabled("#ro-pause"));
  await shot(admin, "rollout", WIDE);
  await shot(admin, "rollout", PHONE);
  await admin.setViewportSize(WIDE);
});

test("a read-only token sees the actions disabled and the server refuses them", async () => {
  const reader = await newPage();
  await signIn(reader, cfg.read_token);
  assert.equal((await reader.textContent("#scope")).trim(), "read");
  await reader.goto(`${UI}#/rollouts/${encodeURIComponent(rolloutId)}`);
  await reader.waitForFunction(() => document.querySelector("#rollout-status")?.textContent.trim() === "paused");
  for (const id of ["#ro-start", "#ro-pause", "#ro-resume", "#ro-abort"])
    assert.ok(await reader.isDisabled(id), `${id} is enabled for a read token`);
  for (const cmd of ["resume", "abort", "pause"]) {
    const r = await apiStatus(reader, "POST", `/v1/rollouts/${rolloutId}/${cmd}`, cfg.read_token);
    assert.equal(r.status, 403, `${cmd}: ${JSON.stringify(r.body)}`);
  }
  const start = await apiStatus(reader, "POST", "/v1/rollouts", cfg.read_token);
  assert.equal(start.status, 403);
  assert.equal((await apiStatus(reader, "GET", `/v1/rollouts/${rolloutId}`, cfg.read_token)).body.status, "paused");
  assert.deepEqual(reader.problems, []);
  await reader.context().close();
});

test("resume and abort: the state changes on the page", async () => {
  await admin.click("#ro-resume");
  await admin.waitForFunction(() => document.querySelector("#rollout-status")?.textContent.trim() === "running");
  await admin.click("#ro-abort");
  await admin.waitForFunction(() => document.querySelector("#rollout-status")?.textContent.trim() === "aborted");
  assert.equal((await apiStatus(admin, "GET", `/v1/rollouts/${rolloutId}`, cfg.admin_token)).body.status, "aborted");
  for (const id of ["#ro-pause", "#ro-resume", "#ro-abort"]) assert.ok(await admin.isDisabled(id));
  assert.match(await admin.textContent("#rollout-detail"), /aborted by an operator/);
});

test("runs and datasets pages", async () => {
  await admin.goto(`${UI}#/runs`);
  await admin.waitForSelector("#runs-list tbody tr[data-key]");
  await admin.waitForSelector("#run-detail table");
  // The train step's log (a worker process writes it, whether the step succeeds or fails).
  await admin.click('#run-detail button[data-log="train"]');
  await admin.waitForFunction(() => document.querySelector("#run-log")?.textContent.length > 0);
  assert.doesNotMatch(await admin.textContent("#run-log"), /^no log:/);
  await shot(admin, "runs", WIDE);
  await admin.goto(`${UI}#/datasets`);
  await admin.waitForSelector("#snapshot-detail meter");
  await shot(admin, "datasets", WIDE);
});

test("device data holding script payloads is shown as text and nothing runs", async () => {
  const page = await newPage();
  await signIn(page, cfg.admin_token);
  const id = cfg.xss_device;
  await page.goto(`${UI}#/fleet`);
  await page.waitForSelector(`#fleet-table tr[data-key="${id}"]`);
  await page.waitForFunction((p) => document.querySelector("#fleet-table").textContent.includes(p), cfg.payloads[0]);
  const row = await page.textContent(`#fleet-table tr[data-key="${id}"]`);
  for (const p of cfg.payloads) assert.ok(row.includes(p), `the fleet row does not show ${p} as text`);
  await page.selectOption("#fleet-group", cfg.payloads[1]);  // the group filter holds it as text too
  await page.waitForFunction(() => document.querySelectorAll("#fleet-table tbody tr").length === 1);
  await page.goto(`${UI}#/devices/${id}`);
  await page.waitForFunction((p) => document.querySelector("#device-summary")?.textContent.includes(p), cfg.payloads[0]);
  await page.waitForSelector("#device-charts .chart canvas");
  await page.goto(`${UI}#/rollouts/${encodeURIComponent(rolloutId)}`);
  await page.waitForSelector("#rollout-status");
  await page.waitForTimeout(2500);  // a poll or two re-renders everything
  assert.equal(await page.evaluate(() => window.__xss), undefined, "a payload ran");
  assert.equal(await page.locator("main img").count(), 0, "a payload became an element");
  assert.equal(await page.locator("main script").count(), 0, "a payload became a script element");
  assert.deepEqual(await page.evaluate(() => window.__csp), [], "Content-Security-Policy violations");
  assert.deepEqual(page.problems, []);
  assert.deepEqual(await admin.evaluate(() => window.__csp), [], "Content-Security-Policy violations");
  assert.deepEqual(admin.problems, []);
  await page.context().close();
});
