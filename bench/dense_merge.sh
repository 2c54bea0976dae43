#!/usr/bin/env bash
# Dense merge throughput and memory: TIES (top-k by magnitude in every tensor, sign election) of
# three generated llama-shaped bf16 models of about 1 GB each (base + two others), side by side
# with a plain copy of the same bytes (cat every input byte, dd the output's byte count with
# fsync). Two sizes show whether peak RSS grows with the model.
source "$(dirname "$0")/common.sh"
cmake --build "$root/build" -j"$(nproc)" --target moeforge moeforge_make_model >/dev/null
for layers in 8 16; do
  models=()
  for s in 0 1 2; do
    dir=$work/dense-$layers-$s
    [ -d "$dir" ] || "$bin/moeforge_make_model" --family llama --hidden 2048 --intermediate 5632 --heads 16 --kv-heads 8 \
        --vocab 32000 --layers $layers --dtype bf16 --seed $s "$dir" >/dev/null
    models+=("$dir")
  done
  in_bytes=$(cat "$work"/dense-$layers-*/*.safetensors | wc -c)
  echo "== TIES of 3 llama bf16 models, $layers layers, $((in_bytes / 3000000)) MB each"
  args=(merge "$work/ties" --method ties --base "${models[0]}" --model "${models[1]}" --model "${models[2]}"
        --weight 1,0.5 --density 0.5 --quiet)
  cat "$work"/dense-$layers-*/*.safetensors > /dev/null
  "$bin/moeforge" "${args[@]}" >/dev/null
  out_bytes=$(bytes_of "$work/ties")
  rm -rf "$work/ties"
  cleanup='rm -rf "$work/ties" "$work/plain"'
  measure "moeforge merge --method ties (density 0.5)" "$bin/moeforge" "${args[@]}"
  t=$secs; rss=$rss_mb
  mkdir -p "$work/allin" && rm -f "$work/allin"/* && for d in "${models[@]}"; do ln -s "$d/model.safetensors" "$work/allin/$(basename "$d").safetensors"; done
  measure "plain: cat inputs + dd $((out_bytes / 1000000)) MB (fsync)" bash -c "plain_copy '$work/allin' '$work/plain' $out_bytes"
  echo "ratio: $(ratio "$t" "$secs")x plain copy, peak RSS ${rss} MB, output $((out_bytes / 1000000)) MB"
  rm -rf "$work/allin"
done
