# Shared helpers for the bench scripts: timing with peak RSS, and generated models.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
work=${BENCH_WORK:-$root/bench/work}
bin=$root/build
mkdir -p "$work"
command -v /usr/bin/time >/dev/null || { echo "installing GNU time" >&2; apt-get install -y -qq time >/dev/null; }

# measure LABEL CMD...: runs CMD ${REPEAT:-3} times (after each run, $cleanup is evaluated),
# prints the median wall time and the largest peak RSS, and sets $secs and $rss_mb. The last
# run's standard output is kept in $work/.out (for results such as a mean NLL).
measure() {
  local label=$1; shift
  local times=() rss_kb=0 t m
  for _ in $(seq "${REPEAT:-3}"); do
    /usr/bin/time -f "%e %M" -o "$work/.time" "$@" >"$work/.out"
    read -r t m < "$work/.time"
    times+=("$t"); [ "$m" -gt "$rss_kb" ] && rss_kb=$m
    eval "${cleanup:-true}"
  done
  secs=$(printf "%s\n" "${times[@]}" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
  rss_mb=$((rss_kb / 1024))
  printf "%-44s %8.2f s  %6d MB peak RSS   (runs: %s)\n" "$label" "$secs" "$rss_mb" "${times[*]}"
}

# ratio A B: A / B with two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# bytes_of DIR: total size of the .safetensors files in DIR.
bytes_of() { cat "$1"/*.safetensors | wc -c; }

# plain_copy IN_DIR OUT_FILE BYTES: read every input byte, write BYTES bytes, fsync.
plain_copy() {
  cat "$1"/*.safetensors > /dev/null
  dd if=/dev/zero of="$2" bs=16M count=$(( ($3 + 16777215) / 16777216 )) conv=fsync status=none
}
export -f plain_copy
