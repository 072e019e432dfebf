// Runs: every pipeline run; the selected run's steps with their durations and logs, its gates
// with value and threshold, and the artifacts it produced.
import { el, fill, table, badge, num, when, short, section, link } from "../dom.js";
import { get, enc } from "../api.js";

export function mount(root, params) {
  const list = el("div", { id: "runs-list" });
  const detail = el("div", { id: "run-detail" });
  const logTitle = el("h3", {});
  const log = el("pre", { class: "log", id: "run-log" });
  const logBox = el("div", { class: "log-box", hidden: true }, logTitle, log);
  fill(root, el("h1", {}, "Runs"), section("Pipeline runs", list), detail, logBox);
  let shownLog = null;

  async function openLog(id, step) {
    shownLog = { id, step };
    logBox.hidden = false;
    fill(logTitle, `Log of ${step} (${id})`);
    try {
      fill(log, await get(`/v1/runs/${enc(id)}/logs/${enc(step)}`) || "(empty)");
    } catch (e) {
      fill(log, `no log: ${e.message}`);
    }
  }

  return {
    async update() {
      const { runs } = await get("/v1/runs");
      const ordered = [...runs].reverse();
      const id = params[0] || (ordered[0] && ordered[0].id);
      fill(list, table([{ label: "Run" }, { label: "Pipeline" }, { label: "Trigger" }, { label: "Status" },
        { label: "Created" }, { label: "Took", num: true }],
        ordered.map((r) => ({ key: r.id, className: r.id === id ? "selected" : null, cells: [
          link(`#/runs/${enc(r.id)}`, r.id), r.pipeline, r.trigger, badge(r.status), when(r.created_ms),
          r.finished_ms ? `${num((Number(r.finished_ms) - r.created_ms) / 1000, 1)} s` : "–"] })),
        { empty: "no pipeline runs yet" }));
      if (!id) { fill(detail); return; }
      const run = await get(`/v1/runs/${enc(id)}`);
      const res = run.result || {};
      const steps = res.steps || [];
      fill(detail,
        section(`Run ${run.id}`,
          el("p", {}, badge(run.status), " ", run.pipeline, ", trigger ", run.trigger,
            res.reason ? el("span", { class: "reason" }, ` — ${res.reason}`) : null),
          el("h3", {}, "Steps"),
          table([{ label: "Step" }, { label: "Status" }, { label: "Duration", num: true }, { label: "Detail" }, { label: "Log" }],
            steps.map((s) => ({ key: s.name, cells: [s.name, badge(s.status),
              s.duration_s !== undefined ? `${num(s.duration_s, 2)} s` : "–", s.detail || "–",
              ["pending", "skipped"].includes(s.status) ? "–"
                : el("button", { type: "button", class: "small", "data-log": s.name, onclick: () => openLog(run.id, s.name) }, "log")] })),
            { empty: "no steps yet" }),
          el("h3", {}, "Gates"),
          table([{ label: "Gate" }, { label: "Value", num: true }, { label: "Threshold", num: true }, { label: "Result" }, { label: "Detail" }],
            (res.gates || []).map((g) => ({ cells: [el("span", { class: "mono" }, g.expr), num(g.value, 4),
              num(g.threshold, 4), badge(g.passed ? "passed" : "failed"), g.detail || "–"] })),
            { empty: "no gates evaluated" }),
          el("h3", {}, "Artifacts"),
          table([{ label: "Artifact" }, { label: "sha256" }],
            Object.entries(res.artifacts || {}).map(([k, sha]) => ({ cells: [k, el("span", { class: "mono", title: sha }, short(sha, 16))] })),
            { empty: "none" }),
          el("p", {}, "Snapshot ", res.snapshot_id ? link(`#/datasets/${enc(res.snapshot_id)}`, short(res.snapshot_id, 16)) : "–",
            " · model version ", res.model_version ? link(`#/models/${enc(res.model_version.split(":")[0])}/${enc(res.model_version.split(":")[1] || "")}`, res.model_version) : "–",
            " · rollout ", res.rollout_id ? link(`#/rollouts/${enc(res.rollout_id)}`, res.rollout_id) : "–")));
      if (shownLog && shownLog.id === run.id && run.status === "running") openLog(shownLog.id, shownLog.step);
    },
  };
}
