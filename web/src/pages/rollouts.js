// Rollouts: start one (admin), every rollout's status, and the selected one's stage timeline,
// per-device results and events, with pause, resume and abort. The buttons need an admin
// token: with a smaller scope they are disabled (and the server refuses with 403 anyway).
import { el, fill, table, badge, num, pct, when, section, link } from "../dom.js";
import { get, post, enc } from "../api.js";

const ACTIVE = new Set(["running", "paused"]);

export function mount(root, params, ctx) {
  const admin = ctx.isAdmin();
  const why = admin ? null : "needs an admin token";
  const message = el("p", { class: "message", id: "rollout-message", role: "status" });
  const modelSel = el("select", { id: "ro-model", name: "model", disabled: !admin });
  const versionSel = el("select", { id: "ro-version", name: "version", disabled: !admin });
  const target = el("input", { id: "ro-target", name: "target", value: "all", disabled: !admin });
  const canary = el("input", { id: "ro-canary", name: "canary", value: "1", disabled: !admin });
  const waves = el("input", { id: "ro-waves", name: "waves", value: "100%", disabled: !admin });
  const windowS = el("input", { id: "ro-window", name: "window", type: "number", value: "20", min: "1", disabled: !admin });
  const startBtn = el("button", { type: "submit", class: "primary", id: "ro-start", disabled: !admin, title: why }, "Start rollout");
  let models = [];
  let versionsOf = new Map();
  let shown = null;  // the rollout on screen: {id, status, head, stages, devices, events}

  const form = el("form", { class: "card form", id: "rollout-form", onsubmit: async (e) => {
    e.preventDefault();
    const body = { model: modelSel.value, version: Number(versionSel.value), target: target.value.trim() || "all",
      canary: canary.value.trim() || "1",
      waves: waves.value.split(",").map((w) => w.trim()).filter(Boolean),
      criteria: { window_seconds: Number(windowS.value) || 20 } };
    try {
      const { id } = await post("/v1/rollouts", body);
      fill(message, `Started ${id}.`);
      location.hash = `#/rollouts/${enc(id)}`;
    } catch (err) {
      fill(message, el("span", { class: "error" }, `Not started: ${err.message}`));
    }
  } },
  el("h2", {}, "Start a rollout"),
  el("div", { class: "fields" },
    el("label", {}, "Model", modelSel), el("label", {}, "Version", versionSel),
    el("label", {}, "Target", target), el("label", {}, "Canary", canary),
    el("label", {}, "Waves", waves), el("label", {}, "Observe (s)", windowS)),
  startBtn, admin ? null : el("p", { class: "muted" }, "Starting, pausing and aborting rollouts needs an admin token."));

  const list = el("div", { id: "rollouts-list" });
  const detail = el("div", { id: "rollout-detail" });
  fill(root, el("h1", {}, "Rollouts"), message, form, section("Rollouts", list), detail);
  modelSel.addEventListener("change", () => versionOptions());

  function versionOptions() {
    const vs = versionsOf.get(modelSel.value) || [];
    const want = vs.map((v) => String(v.version));
    if ([...versionSel.options].map((o) => o.value).join() === want.join()) return;
    const pick = [...vs].reverse().find((v) => v.stage !== "production") || vs[vs.length - 1];
    fill(versionSel, vs.map((v) => el("option", { value: String(v.version), selected: pick && v.version === pick.version },
      `${v.version} (${v.stage})`)));
  }

  async function command(id, cmd) {
    try {
      const s = await post(`/v1/rollouts/${enc(id)}/${cmd}`);
      fill(message, `${id}: ${cmd} → ${s.status}`);
    } catch (err) {
      fill(message, el("span", { class: "error" }, `${cmd} refused: ${err.message}`));
    }
    ctx.refresh();
  }

  return {
    async update() {
      const [{ rollouts }, m, fleet] = await Promise.all([get("/v1/rollouts"), get("/v1/models"), get("/v1/fleet")]);
      if (m.models.map((x) => x.name).join() !== models.map((x) => x.name).join()) {
        models = m.models;
        fill(modelSel, models.map((x) => el("option", { value: x.name }, x.name)));
      }
      versionsOf = new Map(await Promise.all(models.map(async (x) => [x.name, (await get(`/v1/models/${enc(x.name)}`)).versions])));
      versionOptions();
      const ordered = [...rollouts].sort((a, b) => b.created_ms - a.created_ms);
      const id = params[0] || (ordered[0] && ordered[0].id);
      fill(list, table([{ label: "Rollout" }, { label: "Model version" }, { label: "Status" }, { label: "Created" }, { label: "Updated" }],
        ordered.map((r) => ({ key: r.id, className: r.id === id ? "selected" : null, cells: [
          link(`#/rollouts/${enc(r.id)}`, r.id), `${r.model}:${r.version}`, badge(r.status), when(r.created_ms), when(r.updated_ms)] })),
        { empty: "no rollouts yet" }));
      if (!id) { fill(detail); shown = null; return; }
      const s = await get(`/v1/rollouts/${enc(id)}`);
      const devices = new Map(fleet.devices.map((d) => [d.device_id, d]));
      const button = (cmd, label, enabled) => el("button", { type: "button", id: `ro-${cmd}`, "data-command": cmd,
        class: cmd === "abort" ? "danger" : null, disabled: !admin || !enabled, title: why,
        onclick: () => command(id, cmd) }, label);
      if (!shown || shown.id !== id) {
        shown = { id, status: null, head: el("div", { class: "rollout-head" }), stages: el("div", {}),
          devices: el("div", {}), events: el("div", {}) };
        fill(detail, section(`Rollout ${id}`, shown.head, el("h3", {}, "Stages"), shown.stages,
          el("h3", {}, "Devices"), shown.devices, el("h3", {}, "Events"), shown.events));
      }
      // The status and its buttons are rebuilt only when the status changes, so a poll never
      // replaces a button under the operator's pointer.
      if (shown.status !== s.status) {
        shown.status = s.status;
        fill(shown.head,
          el("span", { id: "rollout-status" }, badge(s.status)), " ",
          el("span", { class: "mono" }, s.model_version), " to ", s.target || "–",
          s.previous_model_version ? ` (previous ${s.previous_model_version})` : "",
          el("span", { class: "actions" }, button("pause", "Pause", s.status === "running"),
            button("resume", "Resume", s.status === "paused"), button("abort", "Abort", ACTIVE.has(s.status))));
      }
      fill(shown.stages, timeline(s));
      fill(shown.devices, deviceResults(s, devices));
      fill(shown.events, table([{ label: "Time" }, { label: "Event" }, { label: "Detail" }],
        [...(s.events || [])].reverse().map((e) => ({ cells: [when(e.t_ms), badge(e.kind), e.detail || "–"] }))));
    },
  };
}

function timeline(s) {
  const current = s.stage;
  return el("ol", { class: "timeline", id: "rollout-stages" }, (s.stages || []).map((st, i) => {
    const state = st.result === "passed" ? "passed" : st.result === "failed" ? "failed"
      : i === current && ACTIVE.has(s.status) && st.started_ms > 0 ? "active" : "pending";
    return el("li", { class: `stage ${state}`, "data-stage": st.name },
      el("div", { class: "stage-name" }, st.name, " ", badge(state === "active" ? s.status : state)),
      el("div", { class: "meta" }, `${st.devices.length} device${st.devices.length === 1 ? "" : "s"}`),
      el("div", { class: "meta" }, "started ", when(st.started_ms)),
      el("div", { class: "meta" }, "all updated ", when(st.updated_ms)),
      el("div", { class: "meta" }, "finished ", when(st.finished_ms)));
  }));
}

function deviceResults(s, devices) {
  const rows = [];
  (s.stages || []).forEach((st) => {
    for (const id of st.devices) {
      const d = devices.get(id) || {};
      const base = s.baseline ? s.baseline[id] : undefined;
      const on = d.model_version === s.model_version;
      const result = st.result === "failed" ? "failed" : on ? "updated" : st.started_ms > 0 ? "pending" : "waiting";
      rows.push({ key: id, cells: [link(`#/devices/${enc(id)}`, id), st.name, el("span", { class: "mono" }, d.model_version || "–"),
        badge(d.status || "unknown"), base === undefined || base < 0 ? "–" : pct(base),
        typeof d.accuracy === "number" ? pct(d.accuracy) : "–", num(d.latency_p95_ms, 2), badge(result)] });
    }
  });
  return table([{ label: "Device" }, { label: "Stage" }, { label: "Runs" }, { label: "Status" },
    { label: "Accuracy before", num: true }, { label: "Accuracy now", num: true }, { label: "p95 ms", num: true }, { label: "Result" }],
  rows, { className: "rollout-devices" });
}
