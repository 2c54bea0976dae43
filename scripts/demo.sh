#!/usr/bin/env bash
# Builds moeforge and runs it on the shipped example data.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
fixtures=../shared/fixtures/models
build/moeforge inspect "$fixtures/tiny-mixtral"
