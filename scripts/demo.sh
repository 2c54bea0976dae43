#!/usr/bin/env bash
# Builds moeforge and runs the main job on the shipped example data: four byte-level domain
# experts (English, Python, German, C) composed into a Mixtral the Branch-Train-MiX way, with
# routers initialised from each domain's calibration text (domain centroids, then fitted routers),
# then evaluated on held-out text next to the expert it came from.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
f=../shared/fixtures
btx=$f/models/btx-bytes
out=${DEMO_OUT:-out/demo-btx-moe}
build/moeforge compose --expert $btx/expert-en --expert $btx/expert-py --expert $btx/expert-de --expert $btx/expert-c \
  "$out" --force --router centroid --router-bytes $f/corpora/{en,py,de,c}/calib.txt --seq-len 128
build/moeforge inspect "$out"
echo "bits per byte of the composed MoE on held-out text of each domain:"
build/moeforge eval "$out" --bytes $f/corpora/{en,py,de,c}/eval.txt --seq-len 128
echo "the same MoE with routers fitted by logistic regression on the same calibration text:"
build/moeforge compose --expert $btx/expert-en --expert $btx/expert-py --expert $btx/expert-de --expert $btx/expert-c \
  "$out-fitted" --force --quiet --router logistic --router-bytes $f/corpora/{en,py,de,c}/calib.txt --seq-len 128
build/moeforge eval "$out-fitted" --bytes $f/corpora/{en,py,de,c}/eval.txt --seq-len 128
echo "the German expert alone, for comparison:"
build/moeforge eval $btx/expert-de --bytes $f/corpora/{en,py,de,c}/eval.txt --seq-len 128
