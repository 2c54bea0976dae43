#!/usr/bin/env bash
# Scale-out calibration (issue #16): `moeforge observe` on a generated mixtral-shaped model at equal
# total cores — 1 process × 2 threads, 2 MPI ranks × 1 thread (moeforge-mpi under mpirun), and
# 2 shards (--shard 1/2, 2/2, 1 thread each, side by side) + `stats merge` — plus the same with
# half the tokens and with 1 rank, to show how time scales with tokens and ranks. Every
# configuration's statistics are compared with the single-process file (`moeforge diff`).
source "$(dirname "$0")/common.sh"
tokens=${TOKENS:-16384}
seq=${SEQ_LEN:-512}
REPEAT=${REPEAT:-3}
cmake --build "$root/build" -j2 --target moeforge moeforge-mpi moeforge_make_model >/dev/null
[ -x "$bin/moeforge-mpi" ] || { echo "build/moeforge-mpi missing: install libopenmpi-dev openmpi-bin (scripts/setup.sh) and rebuild" >&2; exit 1; }
mpirun=(mpirun --oversubscribe --allow-run-as-root --bind-to none)

model=$work/mixtral-scale
[ -d "$model" ] || "$bin/moeforge_make_model" --family mixtral --hidden 512 --intermediate 1024 --layers 4 --heads 8 --kv-heads 4 \
    --experts 8 --top-k 2 --vocab 32000 --dtype f32 "$model" >/dev/null
ids=$work/scale-ids.bin
half=$work/scale-ids-half.bin
/usr/bin/python3 -c "
import random, struct
r = random.Random(0); ids = [r.randrange(32000) for _ in range($tokens)]
open('$ids', 'wb').write(struct.pack('<%dH' % len(ids), *ids))
open('$half', 'wb').write(struct.pack('<%dH' % (len(ids) // 2), *ids[:len(ids) // 2]))"
out=$work/scale-stats
mkdir -p "$out"
observe() { "$@" observe "$model" --data "$ids" --seq-len "$seq" --quiet --force; }
export model ids half seq out bin
shards() {  # both shards at once, one thread each, then the merge
  "$bin/moeforge" observe "$model" --data "$ids" --seq-len "$seq" --quiet --force --threads 1 --shard 1/2 --out "$out/s1.st" &
  "$bin/moeforge" observe "$model" --data "$ids" --seq-len "$seq" --quiet --force --threads 1 --shard 2/2 --out "$out/s2.st"
  wait
  "$bin/moeforge" stats merge "$out/s1.st" "$out/s2.st" --out "$out/merged.st" --quiet --force
}
export -f shards

echo "== mixtral-shaped (hidden 512, 8 experts top-2, 4 layers, vocab 32000, f32), $tokens tokens in windows of $seq, 2 cores in all"
measure "1 process x 2 threads" "$bin/moeforge" observe "$model" --data "$ids" --seq-len "$seq" --threads 2 --out "$out/one.st" --quiet --force
t_one=$secs
measure "2 MPI ranks x 1 thread" "${mpirun[@]}" -np 2 "$bin/moeforge-mpi" observe "$model" --data "$ids" --seq-len "$seq" --threads 1 --out "$out/mpi.st" --quiet --force
t_mpi=$secs
measure "2 shards x 1 thread + stats merge" bash -c shards
t_shards=$secs
measure "  of which stats merge alone" "$bin/moeforge" stats merge "$out/s1.st" "$out/s2.st" --out "$out/merged.st" --quiet --force
t_merge=$secs
measure "1 MPI rank x 1 thread" "${mpirun[@]}" -np 1 "$bin/moeforge-mpi" observe "$model" --data "$ids" --seq-len "$seq" --threads 1 --out "$out/rank1.st" --quiet --force
t_rank1=$secs
measure "1 process x 2 threads, half the tokens" "$bin/moeforge" observe "$model" --data "$half" --seq-len "$seq" --threads 2 --out "$out/half.st" --quiet --force
t_half=$secs

echo "overhead at equal cores: MPI $(ratio "$t_mpi" "$t_one")x, shards + merge $(ratio "$t_shards" "$t_one")x (merge alone $(ratio "$t_merge" "$t_one")x) of 1 process x 2 threads"
echo "scaling: 2 ranks vs 1 rank $(ratio "$t_rank1" "$t_mpi")x faster; half the tokens $(ratio "$t_half" "$t_one")x the time"
awk -v t="$tokens" -v s="$t_one" 'BEGIN { printf "throughput: %.0f tokens/s on 2 cores = %.0f tokens/s per core\n", t / s, t / s / 2 }'
for f in mpi merged; do
  "$bin/moeforge" diff "$out/$f.st" "$out/one.st" --atol 1e-6 --quiet >/dev/null && echo "$f.st equals one.st within 1e-6 absolute" || echo "$f.st DIFFERS from one.st"
done
