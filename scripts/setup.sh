#!/usr/bin/env bash
# Installs the Debian packages moeforge builds with, when any is missing (needs root or sudo).
set -euo pipefail
packages=(build-essential cmake pkg-config clang libomp-dev libclang-rt-dev
          libeigen3-dev libcli11-dev nlohmann-json3-dev doctest-dev libyaml-cpp-dev libpcre2-dev libicu-dev
          liblapack-dev libopenblas-openmp-dev
          libopenblas0-pthread  # tests run the interrupt test with both OpenBLAS variants
          librsvg2-bin)         # rsvg-convert: the tests render every kind of SVG plot
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "need root to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
