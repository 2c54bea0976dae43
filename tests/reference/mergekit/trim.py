#!/usr/bin/python3
"""Trims make_expected.py's output for the repository: drops the cases of methods moeforge does
not implement (ram, ramplus_tl) and writes cases.json without indentation.

    python3 trim.py /path/to/generated/expected   # writes ./expected/cases.json
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "expected")
with open(os.path.join(src, "cases.json")) as f:
    cases = json.load(f)
cases["method_cases"] = [c for c in cases["method_cases"] if not c["method"].startswith("ram")]
with open(os.path.join(HERE, "expected", "cases.json"), "w") as f:
    json.dump(cases, f, separators=(",", ":"))
    f.write("\n")
