// Fleet: every device with its model version, status, last seen, accuracy, drift score and
// alarm, labels; filters (text, status, group, alarm only) and sorting by any column.
import { el, fill, table, badge, ago, num, pct, link } from "../dom.js";
import { get } from "../api.js";

const DAY_MS = 86400 * 1000;

// The device certificate's expiry, where the server reports it (`cert_not_after_ms` in
// /v1/devices or /v1/fleet, certificate renewal). Devices without the field show "–".
export function certificateExpiry(d, now = Date.now()) {
  const at = d.cert_not_after_ms;
  if (typeof at !== "number" || at <= 0) return null;
  const days = Math.floor((at - now) / DAY_MS);
  return { days, text: days < 0 ? `expired ${-days} d ago` : `expires in ${days} days` };
}

export function mount(root, _params, _ctx) {
  const state = { sort: { key: "device_id", dir: 1 }, text: "", status: "", group: "", alarm: false };
  let devices = [];
  const search = el("input", { type: "search", id: "fleet-search", placeholder: "device, model, label…",
    oninput: (e) => { state.text = e.target.value.toLowerCase(); draw(); } });
  const statusSel = el("select", { id: "fleet-status", onchange: (e) => { state.status = e.target.value; draw(); } });
  const groupSel = el("select", { id: "fleet-group", onchange: (e) => { state.group = e.target.value; draw(); } });
  const alarm = el("input", { type: "checkbox", id: "fleet-alarm", onchange: (e) => { state.alarm = e.target.checked; draw(); } });
  const summary = el("div", { class: "stats", id: "fleet-summary" });
  const body = el("div", { id: "fleet-table" });
  fill(root, el("h1", {}, "Fleet"), summary,
    el("div", { class: "filters" },
      el("label", {}, "Search ", search),
      el("label", {}, "Status ", statusSel),
      el("label", {}, "Group ", groupSel),
      el("label", { class: "check" }, alarm, " drift alarm only")),
    body);

  function options(select, values, current) {
    const want = ["", ...values];
    const have = [...select.options].map((o) => o.value);
    if (want.join("\n") === have.join("\n")) return;
    fill(select, want.map((v) => el("option", { value: v, selected: v === current }, v || "any")));
  }

  function value(d, key) {
    if (key === "labels") return (d.labels || []).join(",");
    if (key === "cert") return d.cert_not_after_ms || 0;
    const v = d[key];
    return v === null || v === undefined ? -Infinity : v;
  }

  function draw() {
    const { key, dir } = state.sort;
    const shown = devices.filter((d) => {
      if (state.status && d.status !== state.status) return false;
      if (state.group && d.group !== state.group) return false;
      if (state.alarm && !d.drift_alarm) return false;
      if (!state.text) return true;
      return [d.device_id, d.model_version, d.group, ...(d.labels || [])]
        .some((s) => String(s || "").toLowerCase().includes(state.text));
    }).sort((a, b) => {
      const x = value(a, key), y = value(b, key);
      return (x < y ? -1 : x > y ? 1 : 0) * dir || (a.device_id < b.device_id ? -1 : 1);
    });
    const withCert = devices.some((d) => d.cert_not_after_ms > 0);
    const columns = [
      { label: "Device", key: "device_id" }, { label: "Group", key: "group" },
      { label: "Model version", key: "model_version" }, { label: "Status", key: "status" },
      { label: "Last seen", key: "last_seen_ms" }, { label: "Accuracy", key: "accuracy", num: true },
      { label: "Drift", key: "drift_score", num: true }, { label: "Alarm", key: "drift_alarm" },
      { label: "Labels", key: "labels" },
    ];
    if (withCert) columns.push({ label: "Certificate", key: "cert" });
    const rows = shown.map((d) => {
      const cells = [
        link(`#/devices/${encodeURIComponent(d.device_id)}`, d.device_id),
        d.group || "–",
        el("span", { class: "mono" }, d.model_version || "–"),
        badge(d.status),
        el("span", { title: d.last_seen_ms ? new Date(d.last_seen_ms).toISOString() : "" }, ago(d.last_seen_ms)),
        d.accuracy === null ? "–" : pct(d.accuracy),
        num(d.drift_score),
        d.drift_alarm ? badge("alarm") : "–",
        el("span", { class: "labels" }, (d.labels || []).map((l) => el("span", { class: "label" }, l))),
      ];
      if (withCert) {
        const exp = certificateExpiry(d);
        cells.push(exp ? el("span", { class: exp.days < 14 ? "soon" : "" }, exp.text) : "–");
      }
      return { key: d.device_id, cells, className: d.drift_alarm ? "alarm" : null };
    });
    fill(body, table(columns, rows, {
      sort: state.sort, className: "fleet", empty: devices.length ? "no device matches the filters" : "no devices enrolled yet",
      onSort: (k) => { state.sort = { key: k, dir: state.sort.key === k ? -state.sort.dir : 1 }; draw(); },
    }));
    const reporting = devices.filter((d) => d.last_seen_ms > 0);
    const accs = devices.filter((d) => typeof d.accuracy === "number");
    fill(summary,
      stat("devices", devices.length), stat("reporting", reporting.length),
      stat("drift alarms", devices.filter((d) => d.drift_alarm).length),
      stat("mean accuracy", accs.length ? pct(accs.reduce((s, d) => s + d.accuracy, 0) / accs.length) : "–"),
      stat("model versions", new Set(devices.map((d) => d.model_version).filter(Boolean)).size));
  }

  return {
    async update() {
      const [f, registered] = await Promise.all([get("/v1/fleet"), get("/v1/devices")]);
      // /v1/devices carries the enrollment facts (and the certificate's expiry where the
      // server reports it); /v1/fleet the reported state.
      const byId = new Map(registered.devices.map((d) => [d.device_id, d]));
      devices = f.devices.map((d) => ({ ...byId.get(d.device_id), ...d }));
      options(statusSel, [...new Set(devices.map((d) => d.status))].sort(), state.status);
      options(groupSel, [...new Set(devices.map((d) => d.group).filter(Boolean))].sort(), state.group);
      draw();
    },
  };
}

export function stat(label, value) {
  return el("div", { class: "stat" }, el("div", { class: "value" }, String(value)), el("div", { class: "name" }, label));
}
