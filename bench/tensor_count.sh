#!/usr/bin/env bash
# Time against the number of tensors: DeepSeek-V3 holds about 91k tensors in 163 shards, so
# opening a checkpoint and planning a write must be linear in tensors. Generated headers with
# 9k … 91k tiny tensors (the data is a few MB), spread over shards of 560 tensors as DeepSeek's
# are; inspect, a convert --dry-run (the whole plan) and a real convert, with the time per tensor.
source "$(dirname "$0")/common.sh"
cmake --build "$root/build" -j"$(nproc)" --target moeforge >/dev/null
make_many() {  # make_many N DIR: N [16, 16] f32 tensors named like an MoE's experts, indexed shards
  python3 - "$1" "$2" <<'PY'
import json, os, struct, sys
n, out = int(sys.argv[1]), sys.argv[2]
os.makedirs(out, exist_ok=True)
names = [f"model.layers.{i // 1536}.mlp.experts.{(i // 3) % 512}.{('gate', 'up', 'down')[i % 3]}_proj.weight" for i in range(n)]
per, weight_map = 560, {}
shards = (n + per - 1) // per
for s in range(shards):
    fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
    hdr, off = {}, 0
    for name in names[s * per:(s + 1) * per]:
        hdr[name] = {"dtype": "F32", "shape": [16, 16], "data_offsets": [off, off + 1024]}
        off += 1024
        weight_map[name] = fname
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(os.path.join(out, fname), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + bytes(off))
json.dump({"metadata": {"total_size": 1024 * n}, "weight_map": weight_map}, open(os.path.join(out, "model.safetensors.index.json"), "w"))
json.dump({"model_type": "generated"}, open(os.path.join(out, "config.json"), "w"))
PY
}
printf "%-8s %10s %12s %12s %14s\n" tensors inspect "dry-run plan" convert "µs per tensor"
for n in 9000 18000 36000 91000; do
  src=$work/many-$n
  [ -d "$src" ] || make_many $n "$src"
  cleanup='rm -rf "$work/many-out"'
  REPEAT=3 measure "inspect ($n tensors)" "$bin/moeforge" inspect "$src" >/dev/null; t_inspect=$secs
  REPEAT=3 measure "convert --dry-run ($n tensors)" "$bin/moeforge" convert "$src" "$work/many-out" --dry-run --json >/dev/null; t_plan=$secs
  REPEAT=3 measure "convert --threads 1 ($n tensors)" "$bin/moeforge" convert "$src" "$work/many-out" --threads 1 --quiet >/dev/null; t_conv=$secs
  printf "%-8s %9.2fs %11.2fs %11.2fs %14.1f\n" $n "$t_inspect" "$t_plan" "$t_conv" "$(awk -v t="$t_conv" -v n=$n 'BEGIN { print t / n * 1e6 }')"
done
