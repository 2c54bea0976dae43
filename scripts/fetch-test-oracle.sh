#!/usr/bin/env bash
# Installs the llama.cpp oracle the GGUF tests run: node-llama-cpp 3.22.1 with its prebuilt
# linux-x64 llama.cpp (CPU) and @huggingface/gguf 0.4.6 (an independent GGUF parser), pinned in
# tests/oracle/package.json, into build/test-oracle (or $1), with the test scripts beside them.
# Idempotent. Then: MOEFORGE_TEST_ORACLE=build/test-oracle build/moeforge_e2e -tc='*gguf*'
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-build/test-oracle}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)

die() { echo "fetch-test-oracle: $*" >&2; exit 1; }
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  [ "$(id -u)" -eq 0 ] || die "needs npm and node (Debian: apt-get install npm)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null ||
    die "could not install npm"
fi

cp tests/oracle/package.json tests/oracle/*.mjs "$dest/"
if ! node -e 'const p = require(process.argv[1] + "/node_modules/node-llama-cpp/package.json"); process.exit(p.version === "3.22.1" ? 0 : 1)' "$dest" 2>/dev/null ||
   [ ! -d "$dest/node_modules/@node-llama-cpp/linux-x64/bins" ] || [ ! -d "$dest/node_modules/@huggingface/gguf" ]; then
  (cd "$dest" && npm install --omit=optional --no-audit --no-fund --loglevel=error \
     node-llama-cpp@3.22.1 @node-llama-cpp/linux-x64@3.22.1 @huggingface/gguf@0.4.6 >/dev/null) || die "npm install failed"
  echo "installed node-llama-cpp 3.22.1 and @huggingface/gguf 0.4.6 in $dest"
fi
# The prebuilt binary must load here.
node "$dest/ready.mjs" || die "the prebuilt llama.cpp of node-llama-cpp does not load here"
