#!/usr/bin/env bash
# Forward-pass speed: `moeforge eval` vs the same forward in PyTorch (bench/torch_forward.py,
# Debian python3-torch with OpenBLAS, same thread count) on generated llama-, mixtral- and
# deepseek_v3-shaped (MLA) float32 models and random tokens. Both report the mean NLL, which must
# agree. MODELS="deepseek_v3" (any of llama mixtral deepseek_v3) runs only those.
source "$(dirname "$0")/common.sh"
threads=${THREADS:-2}
tokens=${TOKENS:-8192}
seq=${SEQ_LEN:-512}
models=" ${MODELS:-llama mixtral deepseek_v3} "
# PyTorch's BLAS is Debian's libblas.so.3 alternative: make it OpenBLAS, not the reference BLAS.
if ! /usr/bin/python3 -c "import torch, numpy" 2>/dev/null || ! dpkg -s libopenblas0-openmp >/dev/null 2>&1; then
  echo "installing python3-torch, python3-numpy and OpenBLAS" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch python3-numpy libopenblas0-openmp >/dev/null
fi
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
cmake --build "$root/build" -j"$(nproc)" --target moeforge moeforge_make_model >/dev/null
ids=$work/random-ids.bin
/usr/bin/python3 -c "import numpy as np; np.random.default_rng(0).integers(0, 32000, $tokens, dtype=np.uint16).tofile('$ids')"

run_pair() {  # NAME MODEL_DIR
  local name=$1 dir=$2
  echo "== $name: $("$bin/moeforge" inspect "$dir" --json | /usr/bin/python3 -c 'import json,sys; p=json.load(sys.stdin)["parameters"]; print("%.0fM parameters, %.0fM active" % (p["total"]/1e6, p["active_per_token"]/1e6))'), $tokens tokens in windows of $seq, $threads threads"
  REPEAT=${REPEAT:-3} measure "moeforge eval (wall, incl. loading)" "$bin/moeforge" eval "$dir" --data "$ids" --seq-len "$seq" --threads "$threads" --json
  local t_ours=$secs rss_ours=$rss_mb
  local nll_ours
  nll_ours=$(/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["files"][0]["mean_nll"])' < "$work/.out")
  REPEAT=${REPEAT:-3} measure "pytorch (wall, incl. loading)" /usr/bin/python3 "$here/torch_forward.py" "$dir" "$ids" "$seq" "$threads"
  local t_torch=$secs rss_torch=$rss_mb
  local torch_json
  torch_json=$(cat "$work/.out")
  local t_fwd nll_torch
  t_fwd=$(echo "$torch_json" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')
  nll_torch=$(echo "$torch_json" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["mean_nll"])')
  printf "tokens/s: moeforge %.0f, pytorch %.0f (wall) / %.0f (forward only)\n" \
    "$(awk -v t="$tokens" -v s="$t_ours" 'BEGIN{print t/s}')" "$(awk -v t="$tokens" -v s="$t_torch" 'BEGIN{print t/s}')" \
    "$(awk -v t="$tokens" -v s="$t_fwd" 'BEGIN{print t/s}')"
  echo "speed ratio moeforge/pytorch: $(ratio "$t_torch" "$t_ours")x (wall), $(ratio "$t_fwd" "$t_ours")x (vs pytorch forward only); peak RSS $rss_ours MB vs $rss_torch MB"
  echo "mean NLL: moeforge $nll_ours, pytorch $nll_torch"
}

llama=$work/llama-134m
if [[ $models == *" llama "* ]]; then
  [ -d "$llama" ] || "$bin/moeforge_make_model" --family llama --hidden 768 --intermediate 2048 --layers 12 --heads 12 --kv-heads 4 \
    --vocab 32000 --dtype f32 "$llama" >/dev/null
  run_pair "llama-shaped" "$llama"
fi
mixtral=$work/mixtral-226m
if [[ $models == *" mixtral "* ]]; then
  [ -d "$mixtral" ] || "$bin/moeforge_make_model" --family mixtral --hidden 768 --intermediate 1024 --layers 8 --heads 12 --kv-heads 4 \
    --experts 8 --top-k 2 --vocab 32000 --dtype f32 "$mixtral" >/dev/null
  run_pair "mixtral-shaped" "$mixtral"
fi
# DeepSeek-V3 in miniature: MLA with q_lora_rank, 16 routed experts in 4 groups (top-4 from the
# best 2 groups), 1 shared expert, layer 0 dense; 174M parameters, 100M active.
deepseek=$work/deepseek-v3-174m
if [[ $models == *" deepseek_v3 "* ]]; then
  [ -d "$deepseek" ] || "$bin/moeforge_make_model" --family deepseek_v3 --hidden 768 \
    --intermediate 2048 --layers 8 --heads 12 --q-lora-rank 384 --kv-lora-rank 256 --qk-nope-head-dim 64 \
    --qk-rope-head-dim 32 --v-head-dim 64 --experts 16 --top-k 4 --n-group 4 --topk-group 2 --moe-intermediate 384 \
    --shared-experts 1 --first-dense 1 --vocab 32000 --dtype f32 "$deepseek" >/dev/null
  run_pair "deepseek_v3-shaped (MLA)" "$deepseek"
fi
