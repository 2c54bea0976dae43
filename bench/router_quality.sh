#!/usr/bin/env bash
# Router quality on the btx-bytes suite (issue 13): the four domain experts composed into a Mixtral
# with every router kind (random, zero, embed, hidden, centroid, ridge, logistic), top-2 and top-1,
# routers initialised / fitted from each domain's calib.txt; bits per byte on each domain's held-out
# eval.txt next to each expert alone on its own domain and the dense average; per-layer top-1
# routing accuracy on the eval text; how much of the centroid → expert gap each fitted router
# closes; and a small sweep of --router-scale / --router-lambda. Prints markdown (bench/results-router.md).
# Nothing is tuned to these numbers: the defaults are used unless a row says otherwise.
source "$(dirname "$0")/common.sh"
cmake --build "$root/build" -j2 --target moeforge >/dev/null
f=$(cd "$root/../shared/fixtures" && pwd)
btx=$f/models/btx-bytes
q=$work/router
rm -rf "$q" && mkdir -p "$q"
calib=("$f"/corpora/{en,py,de,c}/calib.txt)
evalfiles=("$f"/corpora/{en,py,de,c}/eval.txt)
experts=(--expert "$btx/expert-en" --expert "$btx/expert-py" --expert "$btx/expert-de" --expert "$btx/expert-c")
bpb() {  # MODEL → "en py de c" bits per byte
  "$bin/moeforge" eval "$1" --bytes "${evalfiles[@]}" --seq-len 128 --json |
    python3 -c 'import json,sys; print(" ".join("%.4f" % x["bits_per_byte"] for x in json.load(sys.stdin)["files"][:4]))'
}
own() {  # each expert on its own domain
  local out=()
  for i in 0 1 2 3; do
    d=(en py de c); out+=("$("$bin/moeforge" eval "$btx/expert-${d[$i]}" --bytes "${evalfiles[$i]}" --seq-len 128 --json |
      python3 -c 'import json,sys; print("%.4f" % json.load(sys.stdin)["files"][0]["bits_per_byte"])')")
  done
  echo "${out[*]}"
}
accuracy() {  # MODEL → "l0 / l1": top-1 routing accuracy of MODEL's routers on the eval text (the "before" of
  # fit-router's report; its re-fitted output is thrown away)
  "$bin/moeforge" fit-router "$1" "$q/acc-tmp" --force --quiet --bytes "${evalfiles[@]}" --seq-len 128 --report "$q/acc.json" >/dev/null
  python3 -c 'import json,sys; print(" / ".join("%.3f" % l["before"]["accuracy"] for l in json.load(open(sys.argv[1]))["layers"]))' "$q/acc.json"
}
row() {  # LABEL K ROUTER-OPTIONS...
  local label=$1 k=$2; shift 2
  local out=$q/$(echo "$label-$k" | tr ' =,' '___')
  "$bin/moeforge" compose "${experts[@]}" "$out" --quiet --experts-per-token "$k" --router-bytes "${calib[@]}" --seq-len 128 "$@" >/dev/null
  local v; v=$(bpb "$out")
  echo "$label|$k|$v|$(accuracy "$out")"
}

own_bpb=$(own)
avg_bpb=$(bpb "$btx/merged-dense-average")
rows=()
for k in 2 1; do
  rows+=("$(row random $k --router random)")
  rows+=("$(row zero $k --router zero)")
  rows+=("$(row embed $k --router embed)")
  rows+=("$(row hidden $k --router hidden --base "$btx/base")")
  rows+=("$(row centroid $k --router centroid)")
  rows+=("$(row ridge $k --router ridge)")
  rows+=("$(row logistic $k --router logistic)")
done
sweep=()
for o in "ridge --router-scale 0.5" "ridge --router-scale 2" "ridge --router-scale 4" "ridge --router-lambda 0.1" "ridge --router-lambda 0.001" \
         "logistic --router-scale 0.5" "logistic --router-scale 2" "logistic --router-lambda 0.001"; do
  set -- $o
  sweep+=("$(row "$o" 2 --router "$@")")
done

python3 - "$own_bpb" "$avg_bpb" "${rows[@]}" -- "${sweep[@]}" <<'PY'
import sys
own = [float(x) for x in sys.argv[1].split()]
avg = [float(x) for x in sys.argv[2].split()]
rest = sys.argv[3:]
cut = rest.index("--")
rows, sweep = rest[:cut], rest[cut + 1:]
parse = lambda r: (lambda p: (p[0], p[1], [float(x) for x in p[2].split()], p[3]))(r.split("|"))
rows, sweep = [parse(r) for r in rows], [parse(r) for r in sweep]
cent = {k: v for (name, k, v, _) in rows if name == "centroid" for k in [k]}
def closed(k, v):  # share of the centroid → own-expert gap closed, per domain, and the mean
    c = cent[k]
    g = [(c[i] - v[i]) / (c[i] - own[i]) for i in range(4)]
    return g, sum(g) / 4
print("| model | top-k | en | py | de | c | mean | routing accuracy layer 0 / 1 | centroid→expert gap closed (en py de c; mean) |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
print("| each expert on its own domain | – | " + " | ".join("%.4f" % x for x in own) + " | %.4f | 1 / 1 | |" % (sum(own) / 4))
print("| dense average of the experts | – | " + " | ".join("%.4f" % x for x in avg) + " | %.4f | | |" % (sum(avg) / 4))
def table(rs):
    for name, k, v, acc in rs:
        g, m = closed(k, v)
        gap = "" if name == "centroid" else " ".join("%.2f" % x for x in g) + "; **%.2f**" % m
        print("| %s | %s | %s | %.4f | %s | %s |" % (name, k, " | ".join("%.4f" % x for x in v), sum(v) / 4, acc, gap))
table(rows)
print()
print("Sweep (top-2; gap closed against the top-2 centroid MoE):")
print()
print("| router | top-k | en | py | de | c | mean | routing accuracy layer 0 / 1 | gap closed |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
table(sweep)
PY
