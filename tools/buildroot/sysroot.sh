#!/usr/bin/env bash
# Unpacks the pinned glibc 2.31 sysroot (tools/buildroot/sysroot.lock) into a build root being
# provisioned, and writes the host compiler wrappers that use it:
#   sysroot.sh ROOT MIRROR
# ROOT/opt/fastdeploy-ops/glibc-2.31/sysroot  Debian 11 libc6-dev, gcc 10, Python 3.11 headers
# ROOT/opt/fastdeploy-ops/glibc-2.31/bin/gcc, g++  gcc 10 with --sysroot set
# The compiler runs inside the root on the root's newer glibc and libraries (same sonames), with
# the root's binutils; only what it compiles and links against comes from the sysroot.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

root="$1"
mirror="$2"
prefix="/opt/fastdeploy-ops/glibc-2.31"
sysroot="${root}${prefix}/sysroot"
downloads="$(mktemp -d)"
trap 'rm -rf "${downloads}"' EXIT

command -v curl >/dev/null || die "'curl' is missing on the host; install curl"
mkdir -p "${sysroot}" "${root}${prefix}/bin"
while read -r path sha256; do
  deb="${downloads}/$(basename "${path}")"
  curl -fsS --retry 3 -o "${deb}" "${mirror}/${path}" \
    || die "could not download ${mirror}/${path} (tools/buildroot/sysroot.lock); if the mirror" \
      "dropped it, pin the version its Packages index lists now"
  echo "${sha256}  ${deb}" | sha256sum --check --quiet - \
    || die "${path} does not match its SHA256 in tools/buildroot/sysroot.lock"
  dpkg-deb -x "${deb}" "${sysroot}"
done < <(grep -v '^#' "${BUILDROOT_SRC_DIR}/sysroot.lock" | sed '/^$/d')

# Debian's development symlinks are absolute (libdl.so -> /lib/x86_64-linux-gnu/libdl.so.2):
# inside a sysroot they would point at the root's own, newer glibc. Make them relative.
while IFS= read -r -d '' link; do
  target="$(readlink "${link}")"
  ln -sfn "$(realpath -m --relative-to="$(dirname "${link}")" "${sysroot}${target}")" "${link}"
done < <(find "${sysroot}" -type l -lname '/*' -print0)

for tool in gcc g++; do
  cat >"${root}${prefix}/bin/${tool}" <<WRAPPER
#!/bin/sh
# ${tool} 10 of Debian 11 against its glibc 2.31 (tools/buildroot/sysroot.sh).
exec ${prefix}/sysroot/usr/bin/${tool}-10 --sysroot=${prefix}/sysroot "\$@"
WRAPPER
  chmod 0755 "${root}${prefix}/bin/${tool}"
done
