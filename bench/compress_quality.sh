#!/usr/bin/env bash
# Quality of pruning and merging, in bits per byte on the held-out eval text of each domain:
#  - the composed btx-bytes MoE (4 domain experts, centroid routers, top-2) pruned by 25 % and 50 %
#    (keep 3 / 2 experts) with every criterion, calibrated on one domain or on the mix of four;
#  - the same MoE merged to 3 / 2 experts with sub-moe (full rank and truncated), msmoe, hcsmoe;
#  - the tiny fixture MoEs (random weights, 8 experts) pruned / merged by 25 % and 50 %, as the
#    change in bits per byte against the unpruned model (their absolute values mean nothing).
# Prints markdown tables, and draws the btx-bytes rows as bench/results-compress-quality.svg
# (bench/plot_quality.cpp). Nothing is tuned to these numbers.
source "$(dirname "$0")/common.sh"
cmake --build "$root/build" -j"$(nproc)" --target moeforge moeforge_bench_plot_quality >/dev/null
f=$(cd "$root/../shared/fixtures" && pwd)
btx=$f/models/btx-bytes
q=$work/quality
rm -rf "$q" && mkdir -p "$q"
rows=$q/rows.tsv  # KIND CALIBRATION SERIES KEPT "EN PY DE C", for the figure
mf() { "$bin/moeforge" "$@" --quiet; }
evalfiles=("$f"/corpora/{en,py,de,c}/eval.txt)
bpb() {  # MODEL [max-tokens] → "en py de c" bits per byte
  "$bin/moeforge" eval "$1" --bytes "${evalfiles[@]}" --seq-len 128 --max-tokens "${2:-0}" --json |
    python3 -c 'import json,sys; print(" ".join("%.4f" % x["bits_per_byte"] for x in json.load(sys.stdin)["files"][:4]))'
}
mf compose --expert $btx/expert-en --expert $btx/expert-py --expert $btx/expert-de --expert $btx/expert-c "$q/moe" \
  --router centroid --router-bytes "$f"/corpora/{en,py,de,c}/calib.txt --seq-len 128 >/dev/null
for cal in en py de c; do
  mf observe "$q/moe" --bytes "$f/corpora/$cal/calib.txt" --seq-len 128 --out "$q/$cal.safetensors" >/dev/null
done
mf observe "$q/moe" --bytes "$f"/corpora/{en,py,de,c}/calib.txt --seq-len 128 --max-tokens 16384 --all-experts --out "$q/mix.safetensors" >/dev/null

echo "![bits per byte against experts kept, per criterion and method](results-compress-quality.svg)"
echo
echo "### Composed btx-bytes MoE: pruning (bits per byte on en / py / de / c eval text)"
echo
unpruned=$(bpb "$q/moe")
printf "unpruned\t-\t-\t4\t%s\n" "$unpruned" > "$rows"
echo "unpruned (4 experts): $unpruned"
echo
echo "| calibration | criterion | keep 3 of 4 (−25 %) | keep 2 of 4 (−50 %) |"
echo "| --- | --- | --- | --- |"
for cal in en py de c mix; do
  for crit in reap frequency weighted-frequency ean ean-mean easy-ep random; do
    row="| $cal | $crit |"
    for keep in 3 2; do
      out=$q/p-$cal-$crit-$keep
      mf prune "$q/moe" "$out" --stats "$q/$cal.safetensors" --keep $keep --criterion $crit >/dev/null
      v=$(bpb "$out")
      printf "prune\t%s\t%s\t%s\t%s\n" "$cal" "$crit" "$keep" "$v" >> "$rows"
      row="$row $v |"
      rm -rf "$out"
    done
    echo "$row"
  done
done
echo
echo "### Composed btx-bytes MoE: merging, calibrated on the mix (bits per byte on en / py / de / c)"
echo
echo "| method | 3 experts (−25 %) | 2 experts (−50 %) |"
echo "| --- | --- | --- |"
for spec in "sub-moe" "sub-moe --rank 32" "sub-moe --rank 8" "sub-moe --energy 0.9" "msmoe" "hcsmoe" "prune-reap"; do
  row="| $spec |"
  for groups in 3 2; do
    out=$q/m-$groups
    if [ "$spec" = prune-reap ]; then
      mf prune "$q/moe" "$out" --stats "$q/mix.safetensors" --keep $groups >/dev/null
    else
      # shellcheck disable=SC2086
      mf merge-experts "$q/moe" "$out" --stats "$q/mix.safetensors" --groups $groups --method $spec >/dev/null
    fi
    v=$(bpb "$out")
    printf "merge\tmix\t%s\t%s\t%s\n" "$spec" "$groups" "$v" >> "$rows"
    row="$row $v |"
    rm -rf "$out"
  done
  echo "$row"
done
"$bin/moeforge_bench_plot_quality" "$rows" "$here/results-compress-quality.svg"
echo
echo "### Fixture MoEs (random weights, 8 experts): change in bits per byte against the unpruned model, mean over en / py / de / c (first 16384 bytes each)"
echo
echo "| model | unpruned | method | keep 6 (−25 %) | keep 4 (−50 %) |"
echo "| --- | --- | --- | --- | --- |"
mean() { python3 -c "import sys; v=[float(x) for x in sys.argv[1:]]; print('%.4f' % (sum(v)/len(v)))" $1; }
for m in tiny-mixtral tiny-qwen2-moe tiny-qwen3-moe tiny-olmoe; do
  model=$f/models/$m
  mf observe "$model" --bytes "$f"/corpora/{en,py,de,c}/calib.txt --seq-len 128 --max-tokens 8192 --all-experts --out "$q/$m.safetensors" >/dev/null
  base=$(mean "$(bpb "$model" 16384)")
  for spec in "prune reap" "prune frequency" "prune ean" "prune easy-ep" "prune random" "merge sub-moe" "merge sub-moe --rank 16" "merge msmoe" "merge hcsmoe"; do
    set -- $spec
    kind=$1; shift
    row="| $m | $base | $kind $* |"
    for keep in 6 4; do
      out=$q/f-$keep
      if [ "$kind" = prune ]; then mf prune "$model" "$out" --stats "$q/$m.safetensors" --keep $keep --criterion "$@" >/dev/null
      else mf merge-experts "$model" "$out" --stats "$q/$m.safetensors" --groups $keep --method "$@" >/dev/null; fi
      now=$(mean "$(bpb "$out" 16384)")
      row="$row $(python3 -c "print('%+.4f' % ($now - $base))") |"
      rm -rf "$out"
    done
    echo "$row"
  done
done
