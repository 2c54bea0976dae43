#!/usr/bin/env bash
# What context does to per-token routing (issue 13): the btx-bytes MoE with centroid, ridge and
# logistic routers (top-2, fitted from calib.txt) scored only on the bytes that have at least N bytes
# before them in their 128-byte window (`eval --context N`), next to each expert on its own domain
# scored the same way; prints the centroid → expert gap each fitted router closes at every N.
source "$(dirname "$0")/common.sh"
cmake --build "$root/build" -j2 --target moeforge >/dev/null
f=$(cd "$root/../shared/fixtures" && pwd)
btx=$f/models/btx-bytes
q=$work/router-context
rm -rf "$q" && mkdir -p "$q"
domains=(en py de c)
for r in centroid ridge logistic; do
  "$bin/moeforge" compose --expert "$btx/expert-en" --expert "$btx/expert-py" --expert "$btx/expert-de" --expert "$btx/expert-c" "$q/$r" --quiet --experts-per-token 2 \
    --router-bytes "$f"/corpora/{en,py,de,c}/calib.txt --seq-len 128 --router "$r" >/dev/null
done
bpb() {  # MODEL CONTEXT FILE... → bits per byte of each file
  local model=$1 context=$2; shift 2
  "$bin/moeforge" eval "$model" --bytes "$@" --seq-len 128 --context "$context" --json |
    python3 -c 'import json,sys; print(" ".join("%.4f" % x["bits_per_byte"] for x in json.load(sys.stdin)["files"][:-1]))'
}
rows=()
for n in 0 32 64 96; do
  own=()
  for d in "${domains[@]}"; do own+=("$(bpb "$btx/expert-$d" "$n" "$f/corpora/$d/eval.txt")"); done
  rows+=("$n|own|${own[*]}")
  for r in centroid ridge logistic; do rows+=("$n|$r|$(bpb "$q/$r" "$n" "$f"/corpora/{en,py,de,c}/eval.txt)"); done
done
python3 - "${rows[@]}" <<'PY'
import sys
rows = {}
for r in sys.argv[1:]:
    n, name, v = r.split("|")
    rows[(int(n), name)] = [float(x) for x in v.split()]
print("| context N | router | en | py | de | c | mean | centroid→expert gap closed (en py de c; mean) |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for n in sorted({n for n, _ in rows}):
    own, cent = rows[(n, "own")], rows[(n, "centroid")]
    for name in ["own", "centroid", "ridge", "logistic"]:
        v = rows[(n, name)]
        gap = ""
        if name in ("ridge", "logistic"):
            g = [(cent[i] - v[i]) / (cent[i] - own[i]) for i in range(4)]
            gap = " ".join("%.2f" % x for x in g) + "; **%.2f**" % (sum(g) / 4)
        label = "each expert on its own domain" if name == "own" else name
        print("| %d | %s | %s | %.4f | %s |" % (n, label, " | ".join("%.4f" % x for x in v), sum(v) / 4, gap))
PY
