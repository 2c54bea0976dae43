#!/usr/bin/env node
// A GGUF file's header, metadata (with value types) and tensor infos, read by @huggingface/gguf
// (a parser that shares no code with llama.cpp or moeforge). usage: node inspect.mjs FILE.gguf
import {gguf, GGUFValueType, GGMLQuantizationType} from "@huggingface/gguf";

const file = process.argv[2];
const {typedMetadata, tensorInfos, tensorDataOffset} = await gguf(file, {allowLocalFile: true, typedMetadata: true});
const plain = (v) => typeof v === "bigint" ? Number(v) : Array.isArray(v) ? v.map(plain) : v;
const kv = {};
for (const [key, e] of Object.entries(typedMetadata)) {
  if (key === "version" || key === "tensor_count" || key === "kv_count") continue;
  kv[key] = {type: GGUFValueType[e.type], value: plain(e.value)};
  if (e.subType !== undefined) kv[key].elem_type = GGUFValueType[e.subType];
}
console.log(JSON.stringify({
  version: Number(typedMetadata.version.value),
  data_offset: Number(tensorDataOffset),
  kv,
  tensors: tensorInfos.map((t) => ({name: t.name, type: GGMLQuantizationType[t.dtype], ne: t.shape.map(Number), offset: Number(t.offset)})),
}));
