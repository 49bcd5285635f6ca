#!/usr/bin/env bash
# run.sh — shoal's main job on embedded defaults: `shoal topo`, the machine's
# topology and shoal's worker plan for it. Extra arguments go to the tool.
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh"
shoal_build build
exec "$SHOAL_ROOT/build/cli/shoal" topo "$@"
