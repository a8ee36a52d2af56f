#!/usr/bin/env bash
# Installs a software Vulkan driver (Mesa lavapipe) when no WebGPU adapter can be found.
# Debian 12: stock Mesa 22.3 is too old for Dawn ("shaderUniform*ArrayDynamicIndexing
# required"), so take mesa-vulkan-drivers from bookworm-backports (Mesa 25.x).
# Debian 13+/Ubuntu 24.04+: the stock package is new enough.
# Elsewhere: print what to install and exit non-zero.
set -euo pipefail

have_lavapipe() {
  ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 || return 1
  local v
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || echo 0)
  # Mesa 24+ works with Dawn.
  [ "${v%%.*}" -ge 24 ] 2>/dev/null
}

if have_lavapipe; then
  [ -n "${QUIET:-}" ] || echo "setup-software-gpu: Mesa lavapipe $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers) already installed"
  exit 0
fi
# A vendor Vulkan driver (a real GPU) needs nothing from us.
if ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json 2>/dev/null | grep -qv -E 'lvp_icd|intel|radeon|virtio|nouveau|asahi|freedreno|panfrost|broadcom|powervr|gfxstream'; then
  [ -n "${QUIET:-}" ] || echo "setup-software-gpu: a vendor Vulkan driver is installed; nothing to do"
  exit 0
fi
if [ "$(uname -s)" = "Darwin" ]; then
  exit 0 # Metal: Dawn needs nothing else.
fi

if [ ! -r /etc/os-release ]; then
  echo "setup-software-gpu: unknown OS. Install a Vulkan driver (Mesa >= 24 lavapipe, or a GPU driver) by hand." >&2
  exit 1
fi
. /etc/os-release
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

case "${ID:-}:${VERSION_CODENAME:-}" in
  debian:bookworm)
    echo "setup-software-gpu: Debian 12: installing mesa-vulkan-drivers from bookworm-backports"
    if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
      echo "deb http://deb.debian.org/debian bookworm-backports main" | $SUDO tee /etc/apt/sources.list.d/kinkless-backports.list >/dev/null
    fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
    ;;
  debian:*|ubuntu:*)
    echo "setup-software-gpu: ${PRETTY_NAME:-$ID}: installing mesa-vulkan-drivers"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
    ;;
  *)
    cat >&2 <<MSG
setup-software-gpu: no WebGPU adapter and no automatic install for '${PRETTY_NAME:-$ID}'.
Install a Vulkan driver: a GPU vendor driver, or Mesa >= 24 with lavapipe
(Fedora: 'dnf install mesa-vulkan-drivers vulkan-loader'; Arch: 'pacman -S vulkan-swrast').
MSG
    exit 1
    ;;
esac

if have_lavapipe; then
  echo "setup-software-gpu: installed Mesa lavapipe $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)"
else
  echo "setup-software-gpu: mesa-vulkan-drivers installed but lavapipe (Mesa >= 24) not found" >&2
  exit 1
fi
