# source me: environment for transformers 5.2.0 on Debian's torch 1.13
FAM=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PYTHONPATH=$FAM/shims/meta-5.2.0:$FAM/shims/common:$FAM/src/transformers-5.2.0/src:$FAM/src/huggingface_hub-1.4.1/src
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
PY=/usr/bin/python3
