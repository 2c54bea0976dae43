#!/bin/bash
# Unpack the sources that make_golden.py runs (transformers 5.2.0 + 4.57.6, huggingface_hub 1.4.1 + 0.36.0,
# accelerate 0.34.2) into ./src and apply the torch-1.13 patches. Needs the repository snapshots brought by the
# search tool's `fetch` (see README.md):
#   github:TonyRHouston/huggingface-transformers  (a fork whose history and tags include upstream v5.2.0/v4.57.6;
#                                                 huggingface/transformers itself is over the 500 MB fetch limit)
#   github:huggingface/huggingface_hub
#   github:huggingface/accelerate
# and Debian packages: apt-get install python3-torch python3-numpy python3-regex python3-tqdm python3-filelock
#                      python3-packaging python3-yaml python3-requests python3-httpx
set -euo pipefail
FAM=$(cd "$(dirname "$0")" && pwd)
M=${MIRRORS:-/work/.mirror}
TF=$M/TonyRHouston+huggingface-transformers/repo
HUB=$M/huggingface+huggingface_hub/repo
ACC=$M/huggingface+accelerate/repo
mkdir -p "$FAM/src"
cd "$FAM/src"
unpack() {  # repo tag dir
  rm -rf "$3"; mkdir -p "$3"; git -C "$1" archive "$2" src | tar -x -C "$3"
}
# v5.2.0 = 7d9754a05193eb79b1d86aa744b622b8068008cd, v4.57.6 = 753d61104116eefc8ffc977327b441ee0c8d599f
unpack "$TF" v5.2.0 transformers-5.2.0
unpack "$TF" v4.57.6 transformers-4.57.6
unpack "$HUB" v1.4.1 huggingface_hub-1.4.1
unpack "$HUB" v0.36.0 huggingface_hub-0.36.0
unpack "$ACC" v0.34.2 accelerate-0.34.2
patch -p1 -d transformers-5.2.0 < "$FAM/patches/transformers-5.2.0-torch-1.13.diff"
patch -p1 -d transformers-4.57.6 < "$FAM/patches/transformers-4.57.6-torch-1.13.diff"
echo "sources ready in $FAM/src"
