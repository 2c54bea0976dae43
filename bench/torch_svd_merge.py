#!/usr/bin/python3
"""The same subspace merge as bench/svd_merge.cpp in PyTorch: for each of 4 expert pairs and each
projection, torch.linalg.svd of the concatenated float32 matrix, then U_r U_rᵀ · weighted average.
usage: torch_svd_merge.py RANK THREADS"""
import json, sys, time

import torch

rank, threads = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
torch.manual_seed(0)
shapes = [(2816, 1024), (2816, 1024), (1024, 2816)]
experts = [[torch.randn(r, c) * 0.02 for r, c in shapes] for _ in range(8)]
start = time.time()
for g in range(4):
    for p in range(3):
        a, b = experts[2 * g][p], experts[2 * g + 1][p]
        u, s, vh = torch.linalg.svd(torch.cat([a, b], dim=1), full_matrices=False)
        ur = u[:, :rank]
        merged = ur @ (ur.T @ (0.6 * a + 0.4 * b))
print(json.dumps({"rank": rank, "torch_linalg_svd_f32": time.time() - start}))
