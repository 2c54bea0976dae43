#!/usr/bin/env node
// Raw next-token logits of token windows under llama.cpp (node-llama-cpp 3.22.1, CPU, prebuilt),
// for comparing a GGUF with golden (Hugging Face) logits of small-vocabulary models.
// usage: node logits.mjs WINDOWS.json MODEL.gguf
//   WINDOWS.json: {"windows": [[id, ...], ...]}; every window starts from an empty cache at
//   position 0. Prints one JSON line: {"logits": [window][position][token]} (every position,
//   every token of the vocabulary). One thread, float32 KV cache, as nll.mjs.
import fs from "node:fs";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const [windowsFile, modelPath] = process.argv.slice(2);
if (!windowsFile || !modelPath) {
  console.error("usage: node logits.mjs WINDOWS.json MODEL.gguf");
  process.exit(2);
}
const windows = JSON.parse(fs.readFileSync(windowsFile, "utf8")).windows;
const longest = Math.max(...windows.map((w) => w.length));
const llama = await getLlama({gpu: false, build: "never", usePrebuiltBinaries: true, maxThreads: 1,
                              logLevel: LlamaLogLevel.error, progressLogs: false});
const model = await llama.loadModel({modelPath, gpuLayers: 0, checkTensors: true});
const size = Math.max(256, Math.ceil(longest / 256) * 256);
const context = await model.createContext({contextSize: size, batchSize: size, sequences: 1, threads: {ideal: 1, min: 1},
                                           flashAttention: false, swaFullCache: true, ignoreMemorySafetyChecks: true,
                                           experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32"});
const sequence = context.getSequence();
const result = [];
for (const w of windows) {
  await sequence.clearHistory();
  const out = await sequence.controlledEvaluate(w.map((id) => [id, {generateNext: {logits: true}}]));
  result.push(out.map((o) => {
    const row = new Array(o.next.logits.size).fill(null);  // logits: true gives every token
    for (const [token, logit] of o.next.logits) row[token] = logit;
    return row;
  }));
}
console.log(JSON.stringify({logits: result}));
await context.dispose();
await model.dispose();
await llama.dispose();
