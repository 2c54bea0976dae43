#!/usr/bin/env node
// Loads the prebuilt llama.cpp of node-llama-cpp and prints its release (the oracle is usable).
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const llama = await getLlama({gpu: false, build: "never", usePrebuiltBinaries: true, logLevel: LlamaLogLevel.error, progressLogs: false});
console.log("llama.cpp oracle ready:", JSON.stringify(llama.llamaCppRelease));
await llama.dispose();
