#!/usr/bin/env bash
# convert throughput and memory: f32 → bf16 and a bf16 reshard, side by side with a plain copy
# of the same bytes (read every input byte with cat, write the output's byte count with dd,
# fsync). Two model sizes show whether peak RSS grows with the checkpoint.
source "$(dirname "$0")/common.sh"
cmake --build "$root/build" -j"$(nproc)" --target moeforge moeforge_make_model >/dev/null
for layers in 8 18; do
  src=$work/llama-f32-$layers
  [ -d "$src" ] || "$bin/moeforge_make_model" --family llama --hidden 2048 --intermediate 5632 --heads 16 --kv-heads 8 \
      --vocab 32000 --layers $layers --dtype f32 --max-shard-size 2GB "$src" >/dev/null
  in_bytes=$(bytes_of "$src")
  echo "== llama f32, $layers layers, $((in_bytes / 1000000)) MB in $(ls "$src"/*.safetensors | wc -l) shards"
  cat "$src"/*.safetensors > /dev/null  # warm the page cache for every run alike
  rm -rf "$work/bf16" "$work/plain"
  "$bin/moeforge" convert "$src" "$work/bf16" --dtype bf16 --quiet >/dev/null  # kept as the reshard input
  out_bytes=$(bytes_of "$work/bf16")
  cleanup='rm -rf "$work/out" "$work/plain"'
  measure "moeforge convert --dtype bf16" "$bin/moeforge" convert "$src" "$work/out" --dtype bf16 --quiet
  t_conv=$secs; rss_conv=$rss_mb
  measure "plain: cat input + dd $((out_bytes / 1000000)) MB (fsync)" bash -c "plain_copy '$src' '$work/plain' $out_bytes"
  echo "ratio f32→bf16: $(ratio "$t_conv" "$secs")x plain copy, peak RSS ${rss_conv} MB"
  cat "$work/bf16"/*.safetensors > /dev/null
  measure "moeforge convert --max-shard-size 500MB" "$bin/moeforge" convert "$work/bf16" "$work/out" --max-shard-size 500MB --quiet
  t_res=$secs; rss_res=$rss_mb
  measure "plain: cat input + dd $((out_bytes / 1000000)) MB (fsync)" bash -c "plain_copy '$work/bf16' '$work/plain' $out_bytes"
  echo "ratio reshard: $(ratio "$t_res" "$secs")x plain copy, peak RSS ${rss_res} MB"
  rm -rf "$work/bf16"
done
