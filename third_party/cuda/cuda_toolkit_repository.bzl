"""cuda_toolkit_repository: wraps a locally installed CUDA toolkit (nvcc, headers, cudart).

Finds nvcc through CUDA_NVCC, CUDA_HOME or PATH, and nvcc's host compiler through
CUDA_HOST_COMPILER or PATH. The repository's `version.txt` (nvcc's version banner, the installed
package version where dpkg knows it, the host compiler's path and version) is an input of every
CUDA action, so a change of either compiler changes every action's cache key.
"""

# The toolkit's entries in its include folder. Debian installs them into /usr/include beside the
# C library, so the repository links just these into a folder of its own: host code then sees the
# toolkit's headers and the sysroot's C library, never the build machine's.
_INCLUDE_ENTRIES = [
    "*cuda*.h",
    "*cuda*.hpp",
    "builtin_types.h",
    "channel_descriptor.h",
    "common_functions.h",
    "cooperative_groups",
    "cooperative_groups.h",
    "crt",
    "cuda",
    "device_*.h",
    "device_*.hpp",
    "driver_*.h",
    "fatbinary_section.h",
    "host_*.h",
    "library_types.h",
    "math_*.h",
    "math_*.hpp",
    "mma.h",
    "nv",
    "nvfunctional",
    "sm_*.h",
    "sm_*.hpp",
    "surface_*.h",
    "texture_*.h",
    "vector_*.h",
    "vector_*.hpp",
]

# The oldest driver of each CUDA major version: minor-version compatibility lets code built with
# any toolkit of that line run on it (PTX of a newer toolkit still needs a newer driver).
MIN_DRIVER = {
    "11": "450.80.02",
    "12": "525.60.13",
    "13": "580.65.06",
}

def _matches(name, pattern):
    """Whether `name` matches `pattern`, whose only wildcard is `*`."""
    parts = pattern.split("*")
    if len(parts) == 1:
        return name == pattern
    if not name.startswith(parts[0]) or len(name) < len(parts[0]) + len(parts[-1]):
        return False
    position = len(parts[0])
    for middle in parts[1:-1]:
        found = name.find(middle, position)
        if found < 0:
            return False
        position = found + len(middle)
    return name[position:].endswith(parts[-1])

def find_host_compiler(rctx):
    """nvcc's host compiler (CUDA_HOST_COMPILER, else g++ on PATH) and the stamp line naming it.

    The host compiler's identity goes into the toolkit's stamp, so it is part of every CUDA
    action's key, like nvcc's.
    """
    host_compiler = rctx.os.environ.get("CUDA_HOST_COMPILER") or rctx.which("g++")
    if not host_compiler:
        fail("cuda_toolkit: no host compiler (set CUDA_HOST_COMPILER)")
    version = rctx.execute([host_compiler, "--version"])
    if version.return_code != 0:
        fail("cuda_toolkit: '{} --version' failed: {}".format(host_compiler, version.stderr))
    return str(host_compiler), "host compiler {}\n{}".format(host_compiler, version.stdout)

def _find_nvcc(rctx):
    explicit = rctx.os.environ.get("CUDA_NVCC")
    if explicit:
        return rctx.path(explicit)
    cuda_home = rctx.os.environ.get("CUDA_HOME")
    if cuda_home and rctx.path(cuda_home + "/bin/nvcc").exists:
        return rctx.path(cuda_home + "/bin/nvcc")
    found = rctx.which("nvcc")
    if not found:
        fail("cuda_toolkit: no nvcc found (searched CUDA_NVCC, CUDA_HOME/bin, PATH). " +
             "Use tools/bazel, whose build root has CUDA 12.4, or set CUDA_HOME.")
    return found

def _first_existing(rctx, candidates, what):
    for c in candidates:
        if c and rctx.path(c).exists:
            return rctx.path(c)
    fail("cuda_toolkit: {} not found in {}".format(what, candidates))

def _cuda_toolkit_repository_impl(rctx):
    nvcc = _find_nvcc(rctx)
    result = rctx.execute([nvcc, "--version"])
    if result.return_code != 0:
        fail("cuda_toolkit: '{} --version' failed: {}".format(nvcc, result.stderr))
    banner = result.stdout
    release = [w for w in banner.replace(",", " ").replace("\n", " ").split(" ") if w.startswith("V1")]
    if not release:
        fail("cuda_toolkit: cannot read the version from:\n" + banner)
    version = release[0][1:]

    stamp = banner
    dpkg = rctx.which("dpkg-query")
    if dpkg:
        pkg = rctx.execute([dpkg, "-W", "-f", "${Package} ${Version}\n", "nvidia-cuda-toolkit", "nvidia-cuda-dev"])
        if pkg.return_code == 0:
            stamp += pkg.stdout
    rctx.watch(nvcc)

    cuda_home = rctx.os.environ.get("CUDA_HOME", "")
    include = _first_existing(
        rctx,
        [cuda_home + "/include" if cuda_home else None, str(nvcc.dirname.dirname) + "/include", "/usr/include"],
        "cuda_runtime.h's folder",
    )
    if not include.get_child("cuda_runtime.h").exists:
        fail("cuda_toolkit: {} has no cuda_runtime.h".format(include))
    for entry in include.readdir():
        if [p for p in _INCLUDE_ENTRIES if _matches(entry.basename, p)]:
            rctx.symlink(entry, "include/" + entry.basename)
    cudart = _first_existing(
        rctx,
        [
            cuda_home + "/lib64/libcudart_static.a" if cuda_home else None,
            str(nvcc.dirname.dirname) + "/lib64/libcudart_static.a",
            "/usr/lib/x86_64-linux-gnu/libcudart_static.a",
        ],
        "libcudart_static.a",
    )
    rctx.symlink(cudart, "lib/libcudart_static.a")

    host_compiler, host_stamp = find_host_compiler(rctx)
    rctx.file("version.txt", stamp + host_stamp)
    rctx.template("BUILD.bazel", rctx.attr._build_template, {
        "%{nvcc}": str(nvcc),
        "%{host_compiler}": host_compiler,
        "%{version}": version,
        "%{min_driver}": MIN_DRIVER.get(version.split(".")[0], ""),
    })

cuda_toolkit_repository = repository_rule(
    implementation = _cuda_toolkit_repository_impl,
    environ = ["CUDA_NVCC", "CUDA_HOME", "CUDA_HOST_COMPILER", "PATH"],
    local = True,
    attrs = {
        "_build_template": attr.label(default = "//third_party/cuda:cuda_toolkit.BUILD.tpl"),
    },
)
