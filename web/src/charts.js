// Time-series charts (uPlot, from npm): one chart per measure, the model versions the device
// ran marked as vertical lines with their names. The marks are drawn on uPlot's canvas in its
// draw hook (text on a canvas is never markup).
import uPlot from "uplot";
import { el } from "./dom.js";

const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c"];

// marks: [{t (seconds), label}] where the model version changed.
function versionMarks(getMarks) {
  return {
    hooks: {
      draw: [(u) => {
        const marks = getMarks();
        const { ctx } = u;
        const { top, height } = u.bbox;
        ctx.save();
        ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
        ctx.textBaseline = "top";
        for (const m of marks) {
          const x = Math.round(u.valToPos(m.t, "x", true));
          if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
          ctx.strokeStyle = "#64748b";
          ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
          ctx.lineWidth = devicePixelRatio;
          ctx.beginPath();
          ctx.moveTo(x, top);
          ctx.lineTo(x, top + height);
          ctx.stroke();
          ctx.setLineDash([]);
          ctx.fillStyle = "#334155";
          ctx.fillText(m.label, x + 3 * devicePixelRatio, top + 2 * devicePixelRatio);
        }
        ctx.restore();
      }],
    },
  };
}

// A chart in `parent`: series [{label, scale?}], yLabel; returns {update(xs, ys[], marks)}.
export function timeChart(parent, title, series, opts = {}) {
  const box = el("div", { class: "chart", "data-chart": title });
  parent.appendChild(box);
  let marks = [];
  let plot = null;
  const width = () => Math.max(260, box.clientWidth || parent.clientWidth || 600);
  const make = (data) => {
    plot = new uPlot({
      title,
      width: width(),
      height: opts.height || 200,
      plugins: [versionMarks(() => marks)],
      // A fixed range, or from 0 to the data's maximum (at least `floor`, so a flat line at
      // zero is drawn at the bottom of a readable scale, not in the middle of an empty one).
      scales: { x: { time: true }, y: { range: opts.range || ((u, min, max) =>
        [Math.min(0, min ?? 0), Math.max(opts.floor ?? 1, (max ?? 0) * 1.1)]) } },
      axes: [{}, { label: opts.yLabel || "", size: 56 }],
      series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: COLORS[i % COLORS.length],
        width: 2, spanGaps: true, points: { show: false } }))],
      legend: { live: true },
    }, data, box);
  };
  const resize = new ResizeObserver(() => { if (plot) plot.setSize({ width: width(), height: opts.height || 200 }); });
  resize.observe(parent);
  return {
    element: box,
    update(xs, ys, newMarks) {
      marks = newMarks || [];
      const data = [xs, ...ys];
      if (!plot) make(data);
      else plot.setData(data);
    },
    destroy() { resize.disconnect(); if (plot) plot.destroy(); },
  };
}

// Where the model version changes along a series of points [{ts_ms, model_version}].
export function versionChanges(points) {
  const out = [];
  let last = null;
  for (const p of points) {
    if (p.model_version !== last) out.push({ t: p.ts_ms / 1000, label: p.model_version });
    last = p.model_version;
  }
  return out;
}
