#!/usr/bin/env bash
# Regenerates the example plots that README.md shows (docs/plots/*.svg) from the shared fixtures,
# with the commands the README documents. Run from anywhere after building (build/moeforge).
set -euo pipefail
cd "$(dirname "$0")/.."
m=build/moeforge
f=../shared/fixtures
out=docs/plots
tmp=build/doc-plots  # a fixed place, so the commands in the plots' metadata do not change
rm -rf "$tmp" && mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
moe=$f/models/btx-bytes/merged-mixtral-top2

# observe: the composed MoE on the four domains' calibration text
$m observe $moe --bytes $f/corpora/{en,py,de,c}/calib.txt --seq-len 128 --max-tokens 16384 \
  --out "$tmp/mix.safetensors" --plot $out/observe.svg --force --quiet >/dev/null
# prune: keep the expert German text needs (README "prune")
$m observe $moe --bytes $f/corpora/de/calib.txt --seq-len 128 --out "$tmp/de.safetensors" --quiet >/dev/null
$m prune $moe "$tmp/out-de" --stats "$tmp/de.safetensors" --keep 1 --plot $out/prune.svg --force --quiet >/dev/null
# merge-experts: the tiny Mixtral (3 layers × 8 experts) merged into 3 experts per layer
$m observe $f/models/tiny-mixtral --bytes $f/corpora/{en,py}/calib.txt --seq-len 64 --max-tokens 4096 --all-experts \
  --out "$tmp/tiny.safetensors" --quiet >/dev/null
$m merge-experts $f/models/tiny-mixtral "$tmp/merged" --stats "$tmp/tiny.safetensors" --groups 3 --plot $out/merge.svg --force --quiet >/dev/null
# eval: bits per byte of the composed MoE on the four eval texts
$m eval $moe --bytes $f/corpora/{en,py,de,c}/eval.txt --seq-len 128 --plot $out/eval.svg --force --quiet >/dev/null
# fit-router: the composed MoE's routers re-fitted (logistic) from the four domains' calibration text
$m fit-router $moe "$tmp/refit" --bytes $f/corpora/{en,py,de,c}/calib.txt --seq-len 128 --router logistic \
  --plot $out/router.svg --force --quiet >/dev/null
ls -l $out
