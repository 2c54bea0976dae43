#!/usr/bin/env node
// Mean next-token NLL of token windows under llama.cpp (node-llama-cpp 3.22.1, CPU, prebuilt).
// usage: node nll.mjs WINDOWS.json MODEL.gguf... [--threads N]
//   WINDOWS.json: {"windows": [[id, ...], ...]}; every window starts from an empty cache at
//   position 0 and exactly its ids are evaluated (nothing is added). Position i (i >= 1) scores
//   -log p(w[i] | w[0..i-1]) from the raw logits: logit[target] - logit[max] - ln Σ exp(logit - max).
// Prints one JSON line per model: {"model", "mean_nll", "per_window": [...], "n_predictions", "seconds"}.
// The KV cache is float32 (llama.cpp's default f16 cache moves NLLs by ~1e-3).
import fs from "node:fs";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const args = process.argv.slice(2);
let threads = 1;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--threads") threads = Number(args[++i]);
  else files.push(args[i]);
}
if (files.length < 2 || !(threads >= 1)) {
  console.error("usage: node nll.mjs WINDOWS.json MODEL.gguf... [--threads N]");
  process.exit(2);
}
const windows = JSON.parse(fs.readFileSync(files[0], "utf8")).windows;
const longest = Math.max(...windows.map((w) => w.length));
const llama = await getLlama({gpu: false, build: "never", usePrebuiltBinaries: true, maxThreads: threads,
                              logLevel: LlamaLogLevel.error, progressLogs: false});

async function score(path) {
  const model = await llama.loadModel({modelPath: path, gpuLayers: 0, checkTensors: true});
  const size = Math.max(256, Math.ceil(longest / 256) * 256);
  const context = await model.createContext({contextSize: size, batchSize: size, sequences: 1, threads: {ideal: threads, min: 1},
                                             flashAttention: false, swaFullCache: true, ignoreMemorySafetyChecks: true,
                                             experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32"});
  const sequence = context.getSequence();
  const start = performance.now();
  const perWindow = [];
  let total = 0, count = 0;
  for (const w of windows) {
    await sequence.clearHistory();
    const items = w.map((id, i) => i + 1 === w.length ? id : [id, {generateNext: {
      logits: {filter: {tokens: [w[i + 1]], includeSelected: true}}, totalLogitWeight: true, token: true}}]);
    const out = await sequence.controlledEvaluate(items);
    let sum = 0;
    for (let i = 0; i + 1 < w.length; i++) {
      const next = out[i].next;
      const nll = -(next.logits.get(w[i + 1]) - next.logits.get(next.token) - Math.log(next.totalLogitWeight));
      if (!Number.isFinite(nll)) throw new Error(`${path}: non-finite NLL at position ${i}`);
      sum += nll;
    }
    perWindow.push(sum / (w.length - 1));
    total += sum;
    count += w.length - 1;
  }
  const seconds = (performance.now() - start) / 1000;
  console.log(JSON.stringify({model: path, mean_nll: total / count, per_window: perWindow, n_predictions: count, seconds}));
  await context.dispose();
  await model.dispose();
}

for (const path of files.slice(1)) await score(path);
await llama.dispose();
