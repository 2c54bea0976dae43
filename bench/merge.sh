#!/usr/bin/env bash
# Sub-MoE subspace merging of one mixtral-shaped layer (8 experts, gate/up [2816, 1024], down
# [1024, 2816], float32) merged in pairs at rank 512: `moeforge merge-experts` (whole run,
# including reading and writing) side by side with the same decompositions and reconstructions
# in PyTorch (torch.linalg.svd, OpenBLAS); then the decomposition methods compared in C++.
source "$(dirname "$0")/common.sh"
threads=${THREADS:-2}
rank=${RANK:-512}
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
cmake --build "$root/build" -j"$(nproc)" --target moeforge moeforge_make_model moeforge_bench_svd >/dev/null
layer=$work/mixtral-layer
[ -d "$layer" ] || "$bin/moeforge_make_model" --family mixtral --hidden 1024 --intermediate 2816 --layers 1 --heads 16 --kv-heads 8 \
    --experts 8 --vocab 1000 --dtype f32 "$layer" >/dev/null
echo '{"0": [[0, 1], [2, 3], [4, 5], [6, 7]]}' > "$work/pairs.json"
cleanup='rm -rf "$work/merged"'
measure "moeforge merge-experts (sub-moe, rank $rank)" "$bin/moeforge" merge-experts "$layer" "$work/merged" --method sub-moe \
    --rank "$rank" --groups-file "$work/pairs.json" --uniform-weights --threads "$threads" --quiet
t_ours=$secs
t_torch=$(/usr/bin/python3 "$here/torch_svd_merge.py" "$rank" "$threads" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["torch_linalg_svd_f32"])')
printf "%-44s %8.2f s  (decompositions and reconstructions only)\n" "pytorch torch.linalg.svd" "$t_torch"
echo "speed ratio moeforge/pytorch: $(ratio "$t_torch" "$t_ours")x"
echo "decomposition methods, one thread each, same 12 merges:"
OMP_NUM_THREADS=1 "$bin/moeforge_bench_svd" "$rank"
