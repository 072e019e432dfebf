// Building the page without HTML strings: every value, above all what devices report (model
// versions, groups, labels, reasons), becomes a text node, so nothing in it can turn into
// markup or script. There is no innerHTML anywhere in the dashboard.

// el("td", {class: "num", title: "x"}, "text", childNode, ["more", "children"])
// Attributes: class, id, title, href (internal "#/..." links only), type, value, name,
// placeholder, for, colspan, min, max, low, high, optimum, disabled, checked, selected,
// data-*, aria-*, role; on* names take a function (an event listener), never a string.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) {
      if (typeof value !== "function") throw new Error(`${key} must be a function`);
      node.addEventListener(key.slice(2), value);
    } else if (key === "href") {
      const s = String(value);
      node.setAttribute("href", s.startsWith("#/") ? s : "#/");
    } else if (ALLOWED.has(key) || key.startsWith("data-") || key.startsWith("aria-")) {
      node.setAttribute(key, value === true ? "" : String(value));
    } else {
      throw new Error(`attribute ${key} is not allowed`);
    }
  }
  append(node, children);
  return node;
}

const ALLOWED = new Set(["class", "id", "title", "type", "value", "name", "placeholder", "for",
  "colspan", "min", "max", "low", "high", "optimum", "disabled", "checked", "selected", "role",
  "autocomplete", "spellcheck", "tabindex", "hidden"]);

function append(node, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(node, c);
    else if (c instanceof Node) node.appendChild(c);
    else node.appendChild(document.createTextNode(String(c)));
  }
}

// Replaces a node's children.
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

// A table: columns [{label, key?, num?, sort?}], rows of cells (strings or nodes).
export function table(columns, rows, opts = {}) {
  const head = el("tr", {}, columns.map((c) => {
    const th = el("th", { class: c.num ? "num" : null }, c.label);
    if (opts.sort && c.key) {
      th.classList.add("sortable");
      if (opts.sort.key === c.key) th.classList.add(opts.sort.dir > 0 ? "asc" : "desc");
      th.setAttribute("tabindex", "0");
      const go = () => opts.onSort(c.key);
      th.addEventListener("click", go);
      th.addEventListener("keydown", (e) => { if (e.key === "Enter") go(); });
    }
    return th;
  }));
  const body = rows.length
    ? rows.map((r) => el("tr", { class: r.className || null, "data-key": r.key ?? null },
        r.cells.map((cell, i) => el("td", { class: columns[i].num ? "num" : null,
          "data-label": columns[i].label }, cell))))
    : [el("tr", {}, el("td", { colspan: columns.length, class: "empty" }, opts.empty || "nothing yet"))];
  return el("div", { class: "table-wrap" },
    el("table", { class: opts.className || null }, el("thead", {}, head), el("tbody", {}, body)));
}

export function badge(text, kind) {
  return el("span", { class: `badge ${kind || badgeKind(text)}` }, text);
}

function badgeKind(s) {
  const v = String(s);
  if (/^(running|committed|succeeded|passed|production|completed|ok|admin)$/.test(v)) return "good";
  if (/^(paused|staged|probation|downloading|queued|staging|candidate|never_seen|write)$/.test(v)) return "warn";
  if (/^(failed|rejected|rolled_back|aborted|refused|revoked|alarm)$/.test(v)) return "bad";
  return "plain";
}

export function section(title, ...children) {
  return el("section", { class: "card" }, el("h2", {}, title), children);
}

// Times and numbers as operators read them.
export function ago(ms) {
  if (!ms) return "never";
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function when(ms) {
  if (!ms || ms < 0) return "–";
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function num(v, digits = 3) {
  if (v === null || v === undefined || v === "" || Number.isNaN(Number(v))) return "–";
  const n = Number(v);
  return Number.isInteger(n) ? String(n) : n.toFixed(digits);
}

export function pct(v) {
  if (v === null || v === undefined) return "–";
  return `${(Number(v) * 100).toFixed(1)} %`;
}

export function bytes(n) {
  if (n === null || n === undefined) return "–";
  const u = ["B", "KiB", "MiB", "GiB"];
  let v = Number(n), i = 0;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; ++i; }
  return `${i ? v.toFixed(1) : v} ${u[i]}`;
}

export function short(sha, n = 12) {
  return sha ? String(sha).slice(0, n) : "–";
}

export function link(href, text) {
  return el("a", { href }, text);
}
