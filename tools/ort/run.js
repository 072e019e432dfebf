// Runs an ONNX model with ONNX Runtime (one intra-op thread) on raw float32 input and writes
// the first output as raw float32. Usage:
//   node run.js MODEL.onnx INPUT.bin D0,D1,... OUTPUT_NAME OUT.bin
// Exit code 0 on success, 1 with a message on stderr otherwise.
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const [model, input, dims, outputName, out] = process.argv.slice(2);
  if (!out) throw new Error('usage: node run.js MODEL INPUT.bin D0,D1,... OUTPUT_NAME OUT.bin');
  const shape = dims.split(',').map(Number);
  const buf = fs.readFileSync(input);
  const data = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all'});
  const feeds = {};
  feeds[session.inputNames[0]] = new ort.Tensor('float32', data, shape);
  const result = await session.run(feeds);
  const t = result[outputName];
  if (!t) throw new Error('no output named ' + outputName + ' (have ' + session.outputNames + ')');
  fs.writeFileSync(out, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
}

main().catch((e) => { console.error('ort: ' + e.message); process.exit(1); });
