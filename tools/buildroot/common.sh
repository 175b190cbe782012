# Shared by provision.sh and enter.sh: where the build root lives and how it is identified.
# shellcheck shell=bash

BUILDROOT_SRC_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Everything the build keeps outside the repository: build roots, Bazel's output user root, the
# disk cache. Shared by every checkout on the machine.
FASTDEPLOY_OPS_CACHE_DIR="${FASTDEPLOY_OPS_CACHE_DIR:-${HOME:-/root}/.cache/fastdeploy-ops}"

die() {
  echo "tools/bazel: error: $*" >&2
  exit 1
}

# The files whose content defines a build root. Any change to them yields a new root folder.
buildroot_pin_files() {
  local f
  for f in pins.txt requirements.lock paddle-requirements.lock torch-requirements.lock \
    sysroot.lock provision.sh sysroot.sh TrustStore.java system.bazelrc; do
    echo "${BUILDROOT_SRC_DIR}/${f}"
  done
  find "${BUILDROOT_SRC_DIR}/modules" -type f | LC_ALL=C sort
}

buildroot_hash() {
  local f
  buildroot_pin_files | while read -r f; do
    printf '%s\n' "${f#"${BUILDROOT_SRC_DIR}/"}"
    cat "${f}"
  done | sha256sum | cut -c1-16
}

BUILDROOT_HASH="$(buildroot_hash)"
BUILDROOT_DIR="${FASTDEPLOY_OPS_CACHE_DIR}/buildroot-${BUILDROOT_HASH}"
# Written last by provision.sh; its content must equal the pins for the root to count as complete.
BUILDROOT_STAMP="${BUILDROOT_DIR}/etc/fastdeploy-ops-buildroot.stamp"
BUILDROOT_VENV="/opt/fastdeploy-ops/venv"
BUILDROOT_PADDLE_VENV="/opt/fastdeploy-ops/venv-paddle"
BUILDROOT_TORCH_VENV="/opt/fastdeploy-ops/venv-torch"

buildroot_expected_stamp() {
  echo "hash ${BUILDROOT_HASH}"
  grep -v '^#' "${BUILDROOT_SRC_DIR}/pins.txt" | sed '/^$/d'
  grep -v '^#' "${BUILDROOT_SRC_DIR}/requirements.lock" | sed '/^$/d'
  grep -v '^#' "${BUILDROOT_SRC_DIR}/paddle-requirements.lock" | sed '/^$/d'
  grep -v '^#' "${BUILDROOT_SRC_DIR}/torch-requirements.lock" | sed '/^$/d'
  grep -v '^#' "${BUILDROOT_SRC_DIR}/sysroot.lock" | sed '/^$/d'
}

buildroot_is_complete() {
  [[ -f "${BUILDROOT_STAMP}" ]] && diff -q <(buildroot_expected_stamp) "${BUILDROOT_STAMP}" >/dev/null
}
