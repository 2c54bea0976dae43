#!/usr/bin/env bash
# GGUF: (1) converting a generated 2 GB bf16 llama to GGUF f16 and q8_0, (2) pruning a q8_0 GGUF
# mixtral to half its experts, each side by side with a plain copy of the same bytes (read every
# input byte with cat, write the output's byte count with dd, fsync), with peak RSS; (3) `moeforge
# eval` vs llama.cpp (node-llama-cpp 3.22.1's prebuilt CPU build, scripts/fetch-test-oracle.sh) on
# the same float32 models and token windows, same threads: tokens/s of both and the NLLs (EVAL=0: only 1 and 2).
source "$(dirname "$0")/common.sh"
threads=${THREADS:-2}
tokens=${TOKENS:-8192}
seq=${SEQ_LEN:-512}
cmake --build "$root/build" -j"$(nproc)" --target moeforge moeforge_make_model >/dev/null
"$root/scripts/fetch-test-oracle.sh" "$root/build/test-oracle" >/dev/null
oracle=$root/build/test-oracle

size_of() { stat -c %s "$1"; }
plain_copy_file() {  # IN_FILE_OR_DIR OUT BYTES
  if [ -d "$1" ]; then cat "$1"/*.safetensors > /dev/null; else cat "$1" > /dev/null; fi
  dd if=/dev/zero of="$2" bs=16M count=$(( ($3 + 16777215) / 16777216 )) conv=fsync status=none
}
export -f plain_copy_file

# (1) convert
src=$work/llama-bf16-19
[ -d "$src" ] || "$bin/moeforge_make_model" --family llama --hidden 2048 --intermediate 5632 --heads 16 --kv-heads 8 \
    --vocab 32000 --layers 19 --dtype bf16 "$src" >/dev/null
in_bytes=$(bytes_of "$src")
echo "== llama bf16, 19 layers, $((in_bytes / 1000000)) MB → GGUF"
cat "$src"/*.safetensors > /dev/null
for dtype in f16 q8_0; do
  "$bin/moeforge" convert "$src" "$work/probe.gguf" --dtype "$dtype" --quiet --force >/dev/null
  out_bytes=$(size_of "$work/probe.gguf"); rm -f "$work/probe.gguf"
  cleanup='rm -f "$work/out.gguf" "$work/plain"'
  measure "moeforge convert --dtype $dtype" "$bin/moeforge" convert "$src" "$work/out.gguf" --dtype "$dtype" --quiet
  t=$secs; rss=$rss_mb
  measure "plain: cat input + dd $((out_bytes / 1000000)) MB (fsync)" bash -c "plain_copy_file '$src' '$work/plain' $out_bytes"
  echo "ratio bf16→GGUF $dtype: $(ratio "$t" "$secs")x plain copy, peak RSS $rss MB"
done

# (2) prune a q8_0 GGUF by half
mix=$work/mixtral-bf16-8
[ -d "$mix" ] || "$bin/moeforge_make_model" --family mixtral --hidden 2048 --intermediate 2816 --heads 16 --kv-heads 8 \
    --experts 8 --top-k 2 --vocab 32000 --layers 8 --dtype bf16 "$mix" >/dev/null
q8=$work/mixtral-q8_0.gguf
[ -f "$q8" ] || "$bin/moeforge" convert "$mix" "$q8" --dtype q8_0 --quiet >/dev/null
echo '{"0":[0,2,4,6],"1":[1,3,5,7],"2":[0,1,2,3],"3":[4,5,6,7],"4":[0,2,4,6],"5":[1,3,5,7],"6":[0,1,2,3],"7":[4,5,6,7]}' > "$work/keep.json"
"$bin/moeforge" prune "$q8" "$work/probe.gguf" --keep-list "$work/keep.json" --quiet --force >/dev/null
out_bytes=$(size_of "$work/probe.gguf"); rm -f "$work/probe.gguf"
echo "== prune $(( $(size_of "$q8") / 1000000 )) MB q8_0 GGUF mixtral (8 layers × 8 experts) to 4 experts per layer"
cat "$q8" > /dev/null
cleanup='rm -f "$work/out.gguf" "$work/plain"'
measure "moeforge prune --keep-list (blocks copied)" "$bin/moeforge" prune "$q8" "$work/out.gguf" --keep-list "$work/keep.json" --quiet
t=$secs; rss=$rss_mb
measure "plain: cat input + dd $((out_bytes / 1000000)) MB (fsync)" bash -c "plain_copy_file '$q8' '$work/plain' $out_bytes"
echo "ratio prune: $(ratio "$t" "$secs")x plain copy, peak RSS $rss MB"

# (3) eval vs llama.cpp (EVAL=0 skips it)
[ "${EVAL:-1}" = 0 ] && exit 0
/usr/bin/python3 - "$work/windows" "$tokens" "$seq" <<'EOF'
import json, random, sys
out, tokens, seq = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(0)
ids = [rng.randrange(32000) for _ in range(tokens)]
windows = [ids[i:i + seq] for i in range(0, tokens, seq)]
json.dump({"windows": windows}, open(out + ".json", "w"))
with open(out + ".jsonl", "w") as f:
    for w in windows: f.write(json.dumps(w) + "\n")
EOF
run_pair() {  # NAME MODEL_DIR
  local name=$1 dir=$2 gguf=$2.gguf
  [ -f "$gguf" ] || "$bin/moeforge" convert "$dir" "$gguf" --quiet >/dev/null
  echo "== $name: $tokens random tokens in windows of $seq, $threads threads, float32"
  measure "moeforge eval (wall, incl. loading)" "$bin/moeforge" eval "$dir" --data "$work/windows.jsonl" --seq-len "$seq" --threads "$threads" --quiet
  local t_ours=$secs rss_ours=$rss_mb
  measure "llama.cpp (wall, incl. loading)" node "$oracle/nll.mjs" "$work/windows.json" "$gguf" --threads "$threads"
  local t_llama=$secs rss_llama=$rss_mb
  local ours theirs
  ours=$("$bin/moeforge" eval "$dir" --data "$work/windows.jsonl" --seq-len "$seq" --threads "$threads" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["files"][0]["mean_nll"])')
  theirs=$(node "$oracle/nll.mjs" "$work/windows.json" "$gguf" --threads "$threads")
  local fwd nll
  fwd=$(echo "$theirs" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')
  nll=$(echo "$theirs" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["mean_nll"])')
  printf "tokens/s: moeforge %.0f, llama.cpp %.0f (wall) / %.0f (evaluation only)\n" \
    "$(awk -v t="$tokens" -v s="$t_ours" 'BEGIN{print t/s}')" "$(awk -v t="$tokens" -v s="$t_llama" 'BEGIN{print t/s}')" \
    "$(awk -v t="$tokens" -v s="$fwd" 'BEGIN{print t/s}')"
  echo "speed ratio moeforge/llama.cpp: $(ratio "$t_llama" "$t_ours")x (wall), $(ratio "$fwd" "$t_ours")x (vs llama.cpp evaluation only); peak RSS $rss_ours MB vs $rss_llama MB"
  echo "mean NLL: moeforge $ours, llama.cpp $nll"
}
llama=$work/llama-134m
[ -d "$llama" ] || "$bin/moeforge_make_model" --family llama --hidden 768 --intermediate 2048 --layers 12 --heads 12 --kv-heads 4 \
    --vocab 32000 --dtype f32 "$llama" >/dev/null
run_pair "llama-shaped, 134M parameters" "$llama"
mixtral=$work/mixtral-226m
[ -d "$mixtral" ] || "$bin/moeforge_make_model" --family mixtral --hidden 768 --intermediate 1024 --layers 8 --heads 12 --kv-heads 4 \
    --experts 8 --top-k 2 --vocab 32000 --dtype f32 "$mixtral" >/dev/null
run_pair "mixtral-shaped, 226M parameters (100M active)" "$mixtral"
