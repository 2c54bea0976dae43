#!/usr/bin/env bash
# Folders depend downwards only (DESIGN.md): fails when a file includes a header of a folder
# that is not below its own. The CMake targets link the same way; this catches an #include that
# would compile only because every folder shares one include root.
set -euo pipefail
cd "$(dirname "$0")/.."
declare -A allowed=(
  [core]="core"
  [plot]="core plot"
  [formats]="core formats"
  [model]="core formats model"
  [text]="core formats text"
  [engine]="core formats model text engine"
  [merge]="core formats model text engine merge"
  [compress]="core formats model text engine plot compress"
  [recipes]="core recipes"
  [cli]="core formats model text engine plot merge compress recipes cli"
)
status=0
for folder in "${!allowed[@]}"; do
  for file in "$folder"/*.cpp "$folder"/*.hpp; do
    [ -e "$file" ] || continue
    while IFS= read -r dep; do
      case " ${allowed[$folder]} " in
        *" $dep "*) ;;
        *) echo "$file includes a header of $dep/, which is not below $folder/"; status=1 ;;
      esac
    done < <(sed -n 's|^#include "\([a-z_]*\)/.*|\1|p' "$file" | sort -u)
  done
done
exit $status
