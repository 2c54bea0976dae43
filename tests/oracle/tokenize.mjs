#!/usr/bin/env node
// Token ids llama.cpp gives texts with a GGUF's vocabulary (no BOS/EOS added; special tokens
// written in the text are not parsed). usage: node tokenize.mjs MODEL.gguf TEXTS.json
//   TEXTS.json: ["text", ...]; prints one JSON array of id arrays.
import fs from "node:fs";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const [modelPath, textsPath] = process.argv.slice(2);
const texts = JSON.parse(fs.readFileSync(textsPath, "utf8"));
const llama = await getLlama({gpu: false, build: "never", usePrebuiltBinaries: true, logLevel: LlamaLogLevel.error, progressLogs: false});
const model = await llama.loadModel({modelPath, gpuLayers: 0, vocabOnly: true});
console.log(JSON.stringify(texts.map((t) => Array.from(model.tokenize(t, false)))));
await model.dispose();
await llama.dispose();
