#!/usr/bin/env bash
# test.sh — builds shoal and runs the whole test suite (unit, CLI, header).
# Extra arguments go to `meson test` (e.g. --suite unit).
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh"
shoal_build build
meson test -C "$SHOAL_ROOT/build" --print-errorlogs "$@"
