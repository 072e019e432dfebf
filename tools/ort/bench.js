// Times ONNX Runtime (one intra-op thread) on an ONNX model with float32 input of the given
// shape, filled with a fixed pattern. Prints JSON: load-to-first-result ms, latency p50/p99
// (microseconds) over RUNS runs, throughput of batch 64 when BATCH_RUNS > 0, and peak RSS.
// Usage:
//   node bench.js MODEL.onnx D0,D1,... RUNS [BATCH_RUNS]
const ort = require('onnxruntime-node');

async function main() {
  const [model, dims, runsArg, batchArg] = process.argv.slice(2);
  if (!dims) throw new Error('usage: node bench.js MODEL D0,D1,... [RUNS]');
  const shape = dims.split(',').map(Number);
  const runs = Number(runsArg || 1000);
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; ++i) data[i] = ((i * 37) % 101) / 101;
  const t0 = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all',
    executionMode: 'sequential'});
  const feeds = {};
  feeds[session.inputNames[0]] = new ort.Tensor('float32', data, shape);
  await session.run(feeds);
  const firstMs = Number(process.hrtime.bigint() - t0) / 1e6;
  for (let i = 0; i < Math.min(50, runs); ++i) await session.run(feeds);  // warm-up
  const lat = [];
  for (let i = 0; i < runs; ++i) {
    const s = process.hrtime.bigint();
    await session.run(feeds);
    lat.push(Number(process.hrtime.bigint() - s) / 1e3);
  }
  lat.sort((a, b) => a - b);
  let batchPerS = null;
  const batchRuns = Number(batchArg || 0);
  if (batchRuns > 0) {
    const bshape = [64].concat(shape.slice(1));
    const bn = bshape.reduce((a, b) => a * b, 1);
    const bdata = new Float32Array(bn);
    for (let i = 0; i < bn; ++i) bdata[i] = ((i * 37) % 101) / 101;
    const bfeeds = {};
    bfeeds[session.inputNames[0]] = new ort.Tensor('float32', bdata, bshape);
    await session.run(bfeeds);
    const s = process.hrtime.bigint();
    for (let i = 0; i < batchRuns; ++i) await session.run(bfeeds);
    batchPerS = 64 * batchRuns / (Number(process.hrtime.bigint() - s) / 1e9);
  }
  const pct = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
  console.log(JSON.stringify({first_result_ms: firstMs, p50_us: pct(0.5), p99_us: pct(0.99),
                              runs, batch64_per_s: batchPerS, peak_rss_bytes: process.resourceUsage().maxRSS * 1024}));
}

main().catch((e) => { console.error('ort: ' + e.message); process.exit(1); });
