# source me: environment for transformers 4.57.6 on Debian's torch 1.13 (cross-check only)
FAM=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PYTHONPATH=$FAM/shims/meta-4.57.6:$FAM/shims/common:$FAM/src/transformers-4.57.6/src:$FAM/src/huggingface_hub-0.36.0/src:$FAM/src/accelerate-0.34.2/src
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
PY=/usr/bin/python3
