// Datasets: every snapshot, and the selected one's sample counts per split, label and device.
import { el, fill, table, when, short, section, link } from "../dom.js";
import { get, enc } from "../api.js";

function counts(title, obj, total) {
  const entries = Object.entries(obj || {}).sort((a, b) => b[1] - a[1]);
  return el("div", { class: "counts" }, el("h3", {}, title),
    table([{ label: title.replace(/^By /, "") }, { label: "Samples", num: true }, { label: "" }],
      entries.map(([k, n]) => ({ cells: [k === "-1" ? "unlabelled" : k, String(n),
        el("meter", { min: 0, max: total || 1, value: n, title: `${n} of ${total}` })] })), { empty: "none" }));
}

export function mount(root, params) {
  const list = el("div", { id: "snapshots-list" });
  const detail = el("div", { id: "snapshot-detail" });
  fill(root, el("h1", {}, "Datasets"), section("Snapshots", list), detail);
  return {
    async update() {
      const { snapshots } = await get("/v1/datasets/snapshots");
      const ordered = [...snapshots].sort((a, b) => b.created_ms - a.created_ms);
      const id = params[0] || (ordered[0] && ordered[0].id);
      fill(list, table([{ label: "Snapshot" }, { label: "Created" }, { label: "Samples", num: true },
        { label: "train", num: true }, { label: "val", num: true }, { label: "test", num: true }],
        ordered.map((s) => ({ className: s.id === id ? "selected" : null, cells: [
          link(`#/datasets/${enc(s.id)}`, short(s.id, 16)), when(s.created_ms), String(s.samples),
          String(s.splits.train ?? 0), String(s.splits.val ?? 0), String(s.splits.test ?? 0)] })),
        { empty: "no snapshots yet (pipelines make one per run)" }));
      if (!id) { fill(detail); return; }
      const s = await get(`/v1/datasets/snapshots/${enc(id)}`);
      fill(detail, section(`Snapshot ${short(s.id, 16)}`,
        el("p", { class: "mono small" }, s.id),
        el("div", { class: "grid3" }, counts("By split", s.splits, s.samples), counts("By label", s.labels, s.samples),
          counts("By device", s.devices, s.samples))));
    },
  };
}
