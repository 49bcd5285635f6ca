# bootstrap.sh — sourced by run.sh, test.sh and .ci/run: installs the Debian
# packages shoal needs when any is missing (apt-get through sudo when not
# root), then offers shoal_build DIR [meson options] to configure and build.
# Running it again installs nothing and rebuilds only what changed.

SHOAL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# libudev-dev: hwloc's pkg-config file names -ludev for a static link.
SHOAL_PACKAGES=(
  gcc g++ pkg-config meson ninja-build python3
  libhwloc-dev libcpuid-dev libmimalloc-dev libcmocka-dev libinih-dev
  liblz4-dev libudev-dev libjansson-dev
)
# More packages a caller wants, e.g. SHOAL_EXTRA_PACKAGES=chromium (.ci/run:
# the HTML report's browser check).
read -r -a _shoal_extra <<<"${SHOAL_EXTRA_PACKAGES:-}"
SHOAL_PACKAGES+=("${_shoal_extra[@]}")
unset _shoal_extra

shoal_install_packages() {
  local missing=() p sudo=()
  for p in "${SHOAL_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
      missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || {
      echo "bootstrap: need root or sudo to install: ${missing[*]}" >&2
      return 1
    }
    sudo=(sudo)
  fi
  echo "bootstrap: installing ${missing[*]}" >&2
  "${sudo[@]}" apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq \
      --no-install-recommends "${missing[@]}" >/dev/null
}

# shoal_build DIR [meson setup options]: configures DIR once, then builds.
shoal_build() {
  local dir=$1
  shift
  if [ ! -f "$SHOAL_ROOT/$dir/build.ninja" ]; then
    # Quiet when it works; a folder left half-made by an earlier failure is
    # cleared and set up again, this time printing why it fails.
    meson setup "$SHOAL_ROOT/$dir" "$SHOAL_ROOT" "$@" >/dev/null 2>&1 || {
      rm -rf "${SHOAL_ROOT:?}/$dir"
      meson setup "$SHOAL_ROOT/$dir" "$SHOAL_ROOT" "$@"
    } || return 1
  fi
  ninja -C "$SHOAL_ROOT/$dir" >/dev/null || ninja -C "$SHOAL_ROOT/$dir"
}

shoal_install_packages || exit 1
