// Loads a TF.js graph model from files in Node.js (pure JavaScript CPU backend) and predicts on raw RGB pixels.
// node tfjs_check.js MODEL_DIR PIXELS.bin N SIZE   (PIXELS.bin: float32, N x SIZE x SIZE x 3).
// Prints the probabilities and the time per photo (ms, one at a time) as JSON.
const fs = require("fs");
const path = require("path");
const tf = require("@tensorflow/tfjs");
async function main() {
  const [dir, pixelsPath, n, size] = process.argv.slice(2);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, "model.json")));
  const weightData = Buffer.concat(manifest.weightsManifest.flatMap(g => g.paths.map(p => fs.readFileSync(path.join(dir, p)))));
  const handler = tf.io.fromMemory({modelTopology: manifest.modelTopology, weightSpecs: manifest.weightsManifest.flatMap(g => g.weights),
      weightData: weightData.buffer.slice(weightData.byteOffset, weightData.byteOffset + weightData.byteLength), format: manifest.format,
      generatedBy: manifest.generatedBy, convertedBy: manifest.convertedBy, signature: manifest.signature, userDefinedMetadata: manifest.userDefinedMetadata});
  await tf.setBackend("cpu");
  const model = await tf.loadGraphModel(handler);
  const raw = fs.readFileSync(pixelsPath);
  const pixels = tf.tensor4d(new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4), [+n, +size, +size, 3]);
  const probabilities = await model.predict(pixels).array();
  // Time per photo, one at a time, after a warm-up: the median of up to 20.
  const one = i => pixels.slice([i % +n, 0, 0, 0], [1, +size, +size, 3]);
  for (let i = 0; i < 3; i++) await model.predict(one(i)).data();
  const times = [];
  for (let i = 0; i < 20; i++) {
    const photo = one(i);
    const started = process.hrtime.bigint();
    await model.predict(photo).data();
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  times.sort((a, b) => a - b);
  console.log(JSON.stringify({probabilities, latency_ms: times[Math.floor(times.length / 2)], backend: tf.getBackend()}));
}
main().catch(e => { console.error(e.message); process.exit(1); });
