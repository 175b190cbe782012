#!/usr/bin/env bash
# Runs a command inside the build root: `tools/buildroot/enter.sh nvcc --version`.
# Provisions the root first if needed. The root is entered through a private mount namespace,
# so none of the bind mounts below outlives the command. The repository and the cache folder are
# mounted at their own absolute paths, so paths printed inside (bazel-bin, ...) work outside too.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[[ "$(id -u)" == 0 ]] || die "the build root needs root (chroot and mount namespaces); run as root"
command -v unshare >/dev/null || die "'unshare' (util-linux) is missing; install util-linux"

if ! buildroot_is_complete; then
  "${BUILDROOT_SRC_DIR}/provision.sh"
fi

repo_dir="$(cd "${BUILDROOT_SRC_DIR}/../.." && pwd -P)"
work_dir="$(pwd -P)"
case "${work_dir}/" in
  "${repo_dir}/"*) ;;
  *) work_dir="${repo_dir}" ;;
esac
mkdir -p "${FASTDEPLOY_OPS_CACHE_DIR}"
cache_dir="$(cd "${FASTDEPLOY_OPS_CACHE_DIR}" && pwd -P)"

# Variables passed through to the command; everything else is reset to the root's defaults.
pass_env=(
  "HOME=${HOME:-/root}"
  "PATH=${BUILDROOT_VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  "LANG=C.UTF-8"
  "FASTDEPLOY_OPS_CACHE_DIR=${cache_dir}"
  "FASTDEPLOY_OPS_REPO=${repo_dir}"
)
for name in TERM CI USER BAZELISK_SKIP_WRAPPER TEST_TMPDIR; do
  [[ -n "${!name:-}" ]] && pass_env+=("${name}=${!name}")
done

# Joining the namespace of a running process (tools/bazel passes its Bazel server's pid) keeps
# that server usable: a server only serves clients that see its working directory at the same
# mount, so every client of one server shares the server's namespace, which ends with it.
join_pid="${FASTDEPLOY_OPS_JOIN_PID:-}"
if [[ -n "${join_pid}" && "$(readlink "/proc/${join_pid}/root" 2>/dev/null)" == "${BUILDROOT_DIR}" ]]; then
  exec nsenter --target "${join_pid}" --mount -- chroot "${BUILDROOT_DIR}" /bin/sh -c \
    'cd "$0" && exec /usr/bin/env -i "$@"' "${work_dir}" "${pass_env[@]}" "$@"
fi

exec unshare -m --propagation private -- /usr/bin/env bash -c '
  set -e
  root="$1" repo="$2" cache="$3" cwd="$4"; shift 4
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  mount --rbind /sys "$root/sys"
  mount --bind /tmp "$root/tmp"
  for d in "$repo" "$cache"; do
    mkdir -p "$root$d"
    mount --bind "$d" "$root$d"
  done
  cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
  exec chroot "$root" /bin/sh -c "cd \"\$0\" && exec /usr/bin/env -i \"\$@\"" "$cwd" "${@}"
' _ "${BUILDROOT_DIR}" "${repo_dir}" "${cache_dir}" "${work_dir}" "${pass_env[@]}" "$@"
