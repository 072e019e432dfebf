// The dashboard: sign-in, the nav bar, a router over the location's hash (#/fleet,
// #/devices/ID, ...), and polling: the page on screen reloads its data every POLL_MS, so it is
// at most a few seconds behind the API.
import { el, fill } from "./dom.js";
import { ApiError, get, setToken, token } from "./api.js";
import * as fleet from "./pages/fleet.js";
import * as device from "./pages/device.js";
import * as models from "./pages/models.js";
import * as runs from "./pages/runs.js";
import * as rollouts from "./pages/rollouts.js";
import * as datasets from "./pages/datasets.js";

const POLL_MS = 2000;
const PAGES = [
  { path: "fleet", title: "Fleet", page: fleet },
  { path: "devices", title: "Device", page: device, hidden: true },
  { path: "models", title: "Models", page: models },
  { path: "runs", title: "Runs", page: runs },
  { path: "rollouts", title: "Rollouts", page: rollouts },
  { path: "datasets", title: "Datasets", page: datasets },
];

const app = document.getElementById("app");
const ctx = { scope: "", isAdmin: () => ctx.scope === "admin", refresh: () => tick() };
let current = null;   // {path, params, view}
let timer = null;
let status = null;    // the nav's live indicator

function route() {
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, ...rest] = hash.split("/");
  const known = PAGES.find((p) => p.path === path);
  return { entry: known || PAGES[0], params: rest.map(decodeURIComponent) };
}

function signIn(message) {
  stop();
  const input = el("input", { type: "password", id: "token", name: "token", autocomplete: "off",
    placeholder: "operator token", spellcheck: "false" });
  const error = el("p", { class: "error", role: "alert" }, message || "");
  const form = el("form", { class: "signin card", onsubmit: async (e) => {
    e.preventDefault();
    setToken(input.value.trim());
    try {
      await start();
    } catch (err) {
      setToken("");
      fill(error, err.status === 401 ? "That token is not known to this server." : err.message);
    }
  } },
  el("h1", {}, "edgeloop"),
  el("p", {}, "Sign in with an operator token (edgeloop keeps it in this tab only). ",
    "The first admin token is in the server's data folder, admin.token; ",
    "edgeloop tokens create --scope read makes a read-only one."),
  el("label", { for: "token" }, "Token"), input,
  el("button", { type: "submit", class: "primary" }, "Sign in"), error);
  fill(app, form);
  input.focus();
}

async function start() {
  const self = await get("/v1/tokens/self");
  ctx.scope = self.scope;
  status = el("span", { class: "live", id: "live" }, "live");
  const links = PAGES.filter((p) => !p.hidden).map((p) =>
    el("a", { href: `#/${p.path}`, "data-page": p.path }, p.title));
  const nav = el("nav", { class: "top" },
    el("a", { href: "#/fleet", class: "brand" }, "edgeloop"),
    el("div", { class: "links" }, links),
    el("div", { class: "who" }, status,
      el("span", { class: `badge scope ${ctx.scope === "admin" ? "good" : "plain"}`, id: "scope" }, ctx.scope),
      el("button", { type: "button", id: "signout", onclick: () => { setToken(""); location.hash = "#/fleet"; signIn(); } }, "Sign out")));
  const main = el("main", { id: "main" });
  fill(app, nav, main);
  show();
}

function show() {
  const { entry, params } = route();
  const main = document.getElementById("main");
  if (!main) return;
  if (current && current.view.destroy) current.view.destroy();
  for (const a of document.querySelectorAll("nav .links a"))
    a.classList.toggle("active", a.dataset.page === (entry.path === "devices" ? "fleet" : entry.path));
  fill(main);
  document.title = `${entry.title} · edgeloop`;
  current = { entry, params, view: entry.page.mount(main, params, ctx) };
  tick();
}

// Reloads the page on screen, then again POLL_MS later; one timer at a time, however often
// this is called (navigation, a button).
async function tick() {
  clearTimeout(timer);
  const view = current && current.view;
  if (view) {
    try {
      await view.update();
      if (status) { status.textContent = "live"; status.className = "live ok"; status.title = `updated ${new Date().toLocaleTimeString()}`; }
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return signIn("The token is no longer valid.");
      if (status) { status.textContent = "offline"; status.className = "live bad"; status.title = err.message; }
    }
  }
  if (current && current.view === view) {
    clearTimeout(timer);
    timer = setTimeout(tick, POLL_MS);
  }
}

function stop() {
  clearTimeout(timer);
  if (current && current.view.destroy) current.view.destroy();
  current = null;
}

window.addEventListener("hashchange", () => { if (token()) show(); });
if (token()) start().catch((err) => signIn(err.status === 401 ? "The token is no longer valid." : err.message));
else signIn();
