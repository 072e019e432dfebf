// Models: every model's versions and stages, their lineage (parent, dataset snapshot, code
// version) as a graph, the selected version's model card, and the champion (the production
// version) against a challenger (the selected version) metric by metric.
import { el, fill, table, badge, num, when, short, section, link } from "../dom.js";
import { get, enc } from "../api.js";

export function mount(root, params) {
  const list = el("div", { id: "models-list" });
  const versions = el("div", { id: "model-versions" });
  const lineage = el("div", { id: "model-lineage", class: "lineage" });
  const compare = el("div", { id: "model-compare" });
  const card = el("div", { id: "model-card" });
  fill(root, el("h1", {}, "Models"), list,
    section("Versions", versions), section("Lineage", lineage),
    section("Champion and challenger", compare), section("Model card", card));

  return {
    async update() {
      const { models } = await get("/v1/models");
      const name = params[0] || (models[0] && models[0].name);
      fill(list, el("div", { class: "tabs" }, models.map((m) =>
        el("a", { href: `#/models/${enc(m.name)}`, class: m.name === name ? "active" : null },
          m.name, " ", el("span", { class: "muted" }, `v${m.latest_version}`)))),
        models.length ? null : el("p", { class: "muted" }, "No model registered yet."));
      if (!name) return;
      const { versions: vs } = await get(`/v1/models/${enc(name)}`);
      const champion = vs.find((v) => v.stage === "production");
      const newest = [...vs].reverse().find((v) => v.stage !== "production");
      const selected = vs.find((v) => String(v.version) === params[1]) || newest || champion;
      fill(versions, table(
        [{ label: "Version" }, { label: "Stage" }, { label: "Created" }, { label: "Parent" },
          { label: "Dataset snapshot" }, { label: "Code version" }, { label: "Accuracy", num: true }],
        vs.map((v) => ({ key: String(v.version), className: selected && v.version === selected.version ? "selected" : null,
          cells: [link(`#/models/${enc(name)}/${v.version}`, `${name}:${v.version}`), badge(v.stage),
            when(v.created_ms), v.parent || "–", el("span", { class: "mono" }, short(v.dataset_snapshot)),
            el("span", { class: "mono" }, v.code_version || "–"), num((v.metrics || {}).accuracy)] })),
        { empty: "no versions" }));
      fill(lineage, lineageGraph(name, vs, selected));
      fill(compare, comparison(champion, selected));
      if (selected) {
        const c = await get(`/v1/models/${enc(name)}/versions/${selected.version}/card`);
        fill(card, modelCard(c));
      }
    },
  };
}

// The lineage as a tree: each version under its parent, roots being versions trained from
// scratch or fine-tuned from another model; each node names its snapshot and code version.
function lineageGraph(name, vs, selected) {
  const byName = new Map(vs.map((v) => [`${name}:${v.version}`, v]));
  const children = new Map();
  const roots = [];
  for (const v of vs) {
    const p = v.parent && byName.has(v.parent) ? v.parent : null;
    if (p) {
      if (!children.has(p)) children.set(p, []);
      children.get(p).push(v);
    } else {
      roots.push(v);
    }
  }
  const node = (v) => {
    const key = `${name}:${v.version}`;
    const box = el("a", { href: `#/models/${enc(name)}/${v.version}`, "data-node": key,
      class: `node${selected && selected.version === v.version ? " selected" : ""}` },
      el("strong", {}, key), " ", badge(v.stage),
      el("span", { class: "meta" }, "snapshot ", el("span", { class: "mono" }, short(v.dataset_snapshot))),
      el("span", { class: "meta" }, "code ", el("span", { class: "mono" }, v.code_version || "–")));
    const kids = children.get(key) || [];
    return el("li", {}, box, kids.length ? el("ul", {}, kids.map(node)) : null);
  };
  const external = new Map();
  for (const r of roots) {
    const from = r.parent || "";
    if (!external.has(from)) external.set(from, []);
    external.get(from).push(r);
  }
  return el("ul", { class: "tree" }, [...external.entries()].map(([from, rs]) => from
    ? el("li", {}, el("span", { class: "node external" }, el("strong", {}, from), el("span", { class: "meta" }, "parent from outside this model")),
      el("ul", {}, rs.map(node)))
    : rs.map(node)));
}

function numericMetrics(v) {
  const out = {};
  for (const [k, x] of Object.entries((v && v.metrics) || {}))
    if (typeof x === "number") out[k] = x;
  return out;
}

function comparison(champion, challenger) {
  if (!champion && !challenger) return el("p", { class: "muted" }, "No versions to compare.");
  const a = numericMetrics(champion), b = numericMetrics(challenger);
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  const title = (v, role) => v ? `${role}: v${v.version} (${v.stage})` : `${role}: none`;
  const rows = keys.map((k) => {
    const d = a[k] !== undefined && b[k] !== undefined ? b[k] - a[k] : null;
    return { key: k, cells: [k, num(a[k], 4), num(b[k], 4),
      d === null ? "–" : el("span", { class: d > 0 ? "up" : d < 0 ? "down" : "" }, `${d > 0 ? "+" : ""}${num(d, 4)}`)] };
  });
  const gates = ((challenger && challenger.metrics && challenger.metrics.gates) || []);
  return [table([{ label: "Metric" }, { label: title(champion, "Champion"), num: true },
    { label: title(challenger, "Challenger"), num: true }, { label: "Δ", num: true }], rows,
    { className: "compare", empty: "no numeric metrics recorded" }),
  gates.length ? el("div", {}, el("h3", {}, "Gates the challenger passed"), table(
    [{ label: "Gate" }, { label: "Value", num: true }, { label: "Result" }],
    gates.map((g) => ({ cells: [el("span", { class: "mono" }, g.expr), num(g.value, 4), badge(g.passed ? "passed" : "failed")] })))) : null];
}

function modelCard(c) {
  const l = c.lineage || {};
  const ds = l.dataset_snapshot;
  const kv = (k, v) => el("div", { class: "kv" }, el("dt", {}, k), el("dd", {}, v));
  return el("div", {},
    el("dl", { class: "kvs" },
      kv("Model", `${c.model} version ${c.version}`), kv("Stage", badge(c.stage)), kv("Created", c.created),
      kv("Parent", l.parent || "none (trained from scratch)"), kv("Code version", l.code_version || "–"),
      kv("Dataset snapshot", ds && ds.id ? [link(`#/datasets/${enc(ds.id)}`, short(ds.id, 16)),
        ds.samples !== undefined ? ` (${ds.samples} samples)` : ""] : "none recorded")),
    el("h3", {}, "Artifacts"),
    table([{ label: "Variant" }, { label: "sha256" }, { label: "Bytes", num: true }],
      Object.entries(c.artifacts || {}).map(([k, a]) => ({ cells: [k, el("span", { class: "mono" }, short(a.sha256, 16)), String(a.length ?? "–")] }))),
    el("h3", {}, "Hyperparameters"),
    table([{ label: "Name" }, { label: "Value" }], Object.entries(l.hyperparameters || {})
      .map(([k, v]) => ({ cells: [k, typeof v === "string" ? v : JSON.stringify(v)] })), { empty: "none" }),
    el("h3", {}, "Stage history"),
    table([{ label: "Time" }, { label: "From" }, { label: "To" }],
      (c.stage_history || []).map((h) => ({ cells: [h.time, h.from || "–", badge(h.to)] }))));
}
