#!/usr/bin/env bash
# Creates the pinned Debian-unstable build root (Bazel 7, CUDA 12.4, Python; gcc 10 and glibc 2.31
# for host code) in the cache folder. Called by tools/bazel on first use; safe to run by hand.
# The root is assembled in a temporary folder and renamed into place only when complete, so an
# interrupted run leaves nothing that a later run could mistake for a finished root.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

readonly MIRROR="${FASTDEPLOY_OPS_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# The mirror serves a frozen snapshot of sid whose Release file has expired.
readonly APT_OPTS=(-o Acquire::Check-Valid-Until=false -o APT::Install-Recommends=false -o Dpkg::Use-Pty=0)

[[ "$(id -u)" == 0 ]] || die "the build root needs root (debootstrap, chroot and mount namespaces); run as root"
command -v unshare >/dev/null || die "'unshare' (util-linux) is missing; install util-linux"

mkdir -p "${FASTDEPLOY_OPS_CACHE_DIR}"
# One provisioning at a time per root: a second caller waits, then finds the root complete.
exec {lock_fd}>"${BUILDROOT_DIR}.lock"
flock "${lock_fd}"
if buildroot_is_complete; then
  exit 0
fi

free_kb="$(df -Pk "${FASTDEPLOY_OPS_CACHE_DIR}" | awk 'NR==2 {print $4}')"
if (( free_kb < 18 * 1024 * 1024 )); then
  die "the build root needs about 15 GB, only $((free_kb / 1024)) MB free under ${FASTDEPLOY_OPS_CACHE_DIR}"
fi

if ! command -v debootstrap >/dev/null; then
  echo "tools/bazel: installing debootstrap on the host" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null \
    || die "could not install debootstrap with apt-get"
fi

staging="$(mktemp -d "${FASTDEPLOY_OPS_CACHE_DIR}/.buildroot-${BUILDROOT_HASH}.XXXXXX")"
# mktemp's 0700 would become the root directory's mode: the root's own users (postgres, for
# tools/remote-exec) could not reach anything in it.
chmod 0755 "${staging}"
cleanup() {
  # Unmount anything left behind by an interrupted chroot step, then drop the partial root.
  local m
  for m in proc dev sys; do umount -l "${staging}/${m}" 2>/dev/null || true; done
  rm -rf --one-file-system "${staging}"
}
trap cleanup EXIT

echo "tools/bazel: provisioning the build root in ${BUILDROOT_DIR} (first use, a few minutes)" >&2
log="${staging}.log"
step() { echo "tools/bazel:   $*" >&2; }

step "debootstrap sid (minbase)"
debootstrap --variant=minbase sid "${staging}" "${MIRROR}" >"${log}" 2>&1 \
  || die "debootstrap failed, see ${log}"

echo "deb ${MIRROR} sid main contrib non-free" >"${staging}/etc/apt/sources.list"
# The host's CA bundle (it may hold a proxy's CA) for apt and pip; the root's ca-certificates
# package regenerates its own bundle, so pip is pointed at this copy explicitly.
mkdir -p "${staging}/etc/ssl/certs" "${staging}/opt/fastdeploy-ops"
cp /etc/ssl/certs/ca-certificates.crt "${staging}/etc/ssl/certs/ca-certificates.crt"
cp /etc/ssl/certs/ca-certificates.crt "${staging}/opt/fastdeploy-ops/host-ca.crt"
cp /etc/resolv.conf "${staging}/etc/resolv.conf" 2>/dev/null || true

in_staging() {
  unshare -m --propagation private -- bash -c '
    root="$1"; shift
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    mount --rbind /sys "$root/sys"
    exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
      DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"' _ "${staging}" "$@"
}

step "apt-get update"
in_staging apt-get "${APT_OPTS[@]}" update >>"${log}" 2>&1 || die "apt-get update failed, see ${log}"

mapfile -t pins < <(grep -v '^#' "${BUILDROOT_SRC_DIR}/pins.txt" | sed '/^$/d')
for pin in "${pins[@]}"; do
  name="${pin%%=*}"
  want="${pin#*=}"
  have="$(in_staging apt-cache policy "${name}" | awk '/Candidate:/ {print $2}')"
  if ! in_staging apt-cache show "${name}=${want}" >/dev/null 2>&1; then
    die "pinned package ${name}=${want} (tools/buildroot/pins.txt) is not on the mirror ${MIRROR};" \
      "it offers ${have:-nothing}. Update the pin in tools/buildroot/pins.txt to a version the mirror has."
  fi
done

step "apt-get install ${#pins[@]} pinned packages (Bazel, CUDA 12.4, g++-13, Python, CMake)"
in_staging apt-get "${APT_OPTS[@]}" install -y "${pins[@]}" >>"${log}" 2>&1 \
  || die "apt-get install failed, see ${log}"
in_staging apt-get clean >>"${log}" 2>&1

step "glibc 2.31 sysroot and host compiler from tools/buildroot/sysroot.lock"
"${BUILDROOT_SRC_DIR}/sysroot.sh" "${staging}" "${MIRROR}" >>"${log}" 2>&1 \
  || die "the sysroot failed, see ${log}"
in_staging /opt/fastdeploy-ops/glibc-2.31/bin/g++ --version >>"${log}" 2>&1 \
  || die "the sysroot's g++ does not run in the root, see ${log}"

# One hash-locked virtual environment: its interpreter, its lock file (in this folder), its path.
make_venv() {
  local python="$1" lock="$2" venv="$3"
  step "virtual environment ${venv} (${python}) from tools/buildroot/${lock}"
  cp "${BUILDROOT_SRC_DIR}/${lock}" "${staging}/opt/fastdeploy-ops/${lock}"
  in_staging "${python}" -m venv "${venv}" >>"${log}" 2>&1 || die "${python} -m venv failed, see ${log}"
  in_staging "${venv}/bin/pip" install --quiet --no-cache-dir --disable-pip-version-check \
    --cert /opt/fastdeploy-ops/host-ca.crt --require-hashes --only-binary=:all: \
    -r "/opt/fastdeploy-ops/${lock}" >>"${log}" 2>&1 \
    || die "pip install of tools/buildroot/${lock} failed, see ${log}"
}
make_venv python3 requirements.lock "${BUILDROOT_VENV}"
# Paddle has no wheel for the root's Python 3.14.
make_venv python3.13 paddle-requirements.lock "${BUILDROOT_PADDLE_VENV}"
# torch apart from the main environment, so that everything else is tested without it.
make_venv python3 torch-requirements.lock "${BUILDROOT_TORCH_VENV}"

step "Java trust store of the host's CA bundle, for Bazel's downloads"
cp "${BUILDROOT_SRC_DIR}/TrustStore.java" "${staging}/opt/fastdeploy-ops/TrustStore.java"
in_staging java /opt/fastdeploy-ops/TrustStore.java /opt/fastdeploy-ops/host-ca.crt \
  /opt/fastdeploy-ops/java-truststore.p12 fastdeploy-ops >>"${log}" 2>&1 \
  || die "the Java trust store failed, see ${log}"

step "Bazel system settings and offline module stand-ins"
mkdir -p "${staging}/usr/share/fastdeploy-ops"
cp -r "${BUILDROOT_SRC_DIR}/modules" "${staging}/usr/share/fastdeploy-ops/modules"
system_rc="${staging}/etc/bazel.bazelrc"
[[ -f "${staging}/etc/bazel/bazelrc" ]] && system_rc="${staging}/etc/bazel/bazelrc"
cat "${BUILDROOT_SRC_DIR}/system.bazelrc" >>"${system_rc}"

buildroot_expected_stamp >"${staging}/etc/fastdeploy-ops-buildroot.stamp"

# Replace any stale root of the same hash (for example one whose stamp did not match), then
# publish the finished one atomically.
if [[ -e "${BUILDROOT_DIR}" ]]; then
  rm -rf --one-file-system "${BUILDROOT_DIR}"
fi
mv "${staging}" "${BUILDROOT_DIR}"
trap - EXIT
rm -f "${log}"
step "done: $(du -sh "${BUILDROOT_DIR}" | cut -f1)"
