// Device: accuracy, latency and drift over time with the model versions marked, the spool's
// depth and drops, and the update events.
import { el, fill, table, badge, ago, num, pct, when, bytes, section, link } from "../dom.js";
import { get, enc } from "../api.js";
import { timeChart, versionChanges } from "../charts.js";
import { stat } from "./fleet.js";

export function mount(root, params) {
  const id = params[0] || "";
  const header = el("div", { class: "stats", id: "device-summary" });
  const charts = el("div", { class: "charts", id: "device-charts" });
  const events = el("div", { id: "device-events" });
  fill(root, el("p", { class: "crumbs" }, link("#/fleet", "Fleet"), " / ", id),
    el("h1", {}, "Device ", el("span", { class: "mono" }, id)), header,
    section("Over time", charts), section("Update events", events));
  const made = [
    timeChart(charts, "Accuracy", [{ label: "accuracy" }], { range: [0, 1], yLabel: "on labelled samples" }),
    timeChart(charts, "Latency", [{ label: "p50 ms" }, { label: "p95 ms" }], { yLabel: "ms", floor: 1 }),
    timeChart(charts, "Drift", [{ label: "PSI (largest)" }], { yLabel: "PSI", floor: 0.5 }),
    timeChart(charts, "Spool", [{ label: "records queued" }, { label: "records dropped" }], { yLabel: "records", floor: 5 }),
  ];

  return {
    async update() {
      const [fleet, history, ev] = await Promise.all([
        get("/v1/fleet"),
        get(`/v1/fleet/devices/${enc(id)}/telemetry?limit=2000`),
        get(`/v1/fleet/events?device=${enc(id)}&limit=200`),
      ]);
      const d = fleet.devices.find((x) => x.device_id === id);
      if (!d) { fill(header, el("p", { class: "error" }, `No device ${id} in the fleet.`)); return; }
      const spool = d.spool || {};
      fill(header,
        stat("model version", d.model_version || "–"), stat("status", d.status),
        stat("last seen", ago(d.last_seen_ms)), stat("accuracy", d.accuracy === null ? "–" : pct(d.accuracy)),
        stat("drift", `${num(d.drift_score)}${d.drift_alarm ? " (alarm)" : ""}`),
        stat("p95 latency", `${num(d.latency_p95_ms, 2)} ms`),
        stat("spool", `${spool.records ?? "–"} records, ${bytes(spool.bytes)}`),
        stat("dropped", spool.dropped ?? "–"),
        stat("group", d.group || "–"),
        stat("labels", (d.labels || []).join(", ") || "–"));
      const p = history.points;
      const xs = p.map((q) => q.ts_ms / 1000);
      const marks = versionChanges(p);
      made[0].update(xs, [p.map((q) => q.accuracy)], marks);
      made[1].update(xs, [p.map((q) => q.latency_p50_ms), p.map((q) => q.latency_p95_ms)], marks);
      made[2].update(xs, [p.map((q) => q.drift_score)], marks);
      made[3].update(xs, [p.map((q) => q.spool_records), p.map((q) => q.spool_dropped)], marks);
      const rows = [...ev.events].reverse().map((e) => ({ cells: [when(e.ts_ms), badge(e.phase),
        el("span", { class: "mono" }, e.model_version || "–"), String(e.metadata_version), e.reason || "–"] }));
      fill(events, table([{ label: "Time" }, { label: "Phase" }, { label: "Model version" },
        { label: "Metadata version", num: true }, { label: "Reason" }], rows, { empty: "no update events" }));
    },
    destroy() { made.forEach((c) => c.destroy()); },
  };
}
