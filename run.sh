#!/usr/bin/env bash
# run.sh — shoal's main job on embedded defaults: `shoal stress`, 5000 bot
# sessions at 20 ticks per second for 30 s against a 50 ms tick budget, with
# its report and verdict. Extra arguments go to the command.
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh"
shoal_build build
exec "$SHOAL_ROOT/build/cli/shoal" stress "$@"
