#!/usr/bin/env bash
# compose throughput and memory: 4 generated llama-shaped bf16 experts (about 1 GB each) into a
# Mixtral, uniform averaging and a random router, side by side with a plain copy of the same
# bytes (cat every input byte, dd the output's byte count with fsync). Two sizes show whether peak
# RSS grows with the model.
source "$(dirname "$0")/common.sh"
cmake --build "$root/build" -j"$(nproc)" --target moeforge moeforge_make_model >/dev/null
for layers in 8 12; do
  experts=()
  for e in 0 1 2 3; do
    dir=$work/expert-$layers-$e
    [ -d "$dir" ] || "$bin/moeforge_make_model" --family llama --hidden 2048 --intermediate 5632 --heads 16 --kv-heads 8 \
        --vocab 32000 --layers $layers --dtype bf16 --seed $e "$dir" >/dev/null
    experts+=(--expert "$dir")
  done
  in_bytes=$(cat "$work"/expert-$layers-*/*.safetensors | wc -c)
  echo "== 4 llama bf16 experts, $layers layers, $((in_bytes / 4000000)) MB each"
  cat "$work"/expert-$layers-*/*.safetensors > /dev/null
  "$bin/moeforge" compose "${experts[@]}" "$work/moe" --quiet --force >/dev/null
  out_bytes=$(bytes_of "$work/moe")
  rm -rf "$work/moe"
  cleanup='rm -rf "$work/moe" "$work/plain"'
  measure "moeforge compose (uniform, random router)" "$bin/moeforge" compose "${experts[@]}" "$work/moe" --quiet
  t=$secs; rss=$rss_mb
  mkdir -p "$work/allin" && rm -f "$work/allin"/* && for d in "$work"/expert-$layers-*; do ln -s "$d/model.safetensors" "$work/allin/$(basename "$d").safetensors"; done
  measure "plain: cat inputs + dd $((out_bytes / 1000000)) MB (fsync)" bash -c "plain_copy '$work/allin' '$work/plain' $out_bytes"
  echo "ratio: $(ratio "$t" "$secs")x plain copy, peak RSS ${rss} MB, output $((out_bytes / 1000000)) MB"
  rm -rf "$work/allin"
done
