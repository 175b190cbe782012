"""cuda_toolkit_repository: wraps a locally installed CUDA toolkit (nvcc, headers, cudart).

Finds nvcc through CUDA_NVCC, CUDA_HOME or PATH. The repository's `version.txt` (nvcc's own
version banner plus the installed package version where dpkg knows it) is an input of every
CUDA action, so a toolkit change changes every action's cache key.
"""

_HEADER_PATTERNS = [
    "include/*cuda*.h",
    "include/*cuda*.hpp",
    "include/builtin_types.h",
    "include/channel_descriptor.h",
    "include/common_functions.h",
    "include/cooperative_groups.h",
    "include/cooperative_groups/**",
    "include/crt/**",
    "include/cuda/**",
    "include/device_*.h",
    "include/device_*.hpp",
    "include/driver_*.h",
    "include/host_*.h",
    "include/library_types.h",
    "include/math_*.h",
    "include/math_*.hpp",
    "include/mma.h",
    "include/nv/**",
    "include/sm_*.h",
    "include/sm_*.hpp",
    "include/surface_*.h",
    "include/texture_*.h",
    "include/vector_*.h",
    "include/vector_*.hpp",
]

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
    rctx.file("version.txt", stamp)
    rctx.watch(nvcc)

    cuda_home = rctx.os.environ.get("CUDA_HOME", "")
    include = _first_existing(
        rctx,
        [cuda_home + "/include" if cuda_home else None, str(nvcc.dirname.dirname) + "/include", "/usr/include"],
        "cuda_runtime.h's folder",
    )
    if not include.get_child("cuda_runtime.h").exists:
        fail("cuda_toolkit: {} has no cuda_runtime.h".format(include))
    rctx.symlink(include, "include")
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

    host_compiler = rctx.os.environ.get("CUDA_HOST_COMPILER") or rctx.which("g++-13") or rctx.which("g++")
    if not host_compiler:
        fail("cuda_toolkit: no host compiler (set CUDA_HOST_COMPILER)")

    rctx.template("BUILD.bazel", rctx.attr._build_template, {
        "%{nvcc}": str(nvcc),
        "%{host_compiler}": str(host_compiler),
        "%{version}": version,
        "%{header_patterns}": repr(_HEADER_PATTERNS),
        # /usr/include is searched anyway; naming it again would shadow the C library's headers.
        "%{includes}": repr([] if str(include) == "/usr/include" else ["include"]),
    })

cuda_toolkit_repository = repository_rule(
    implementation = _cuda_toolkit_repository_impl,
    environ = ["CUDA_NVCC", "CUDA_HOME", "CUDA_HOST_COMPILER", "PATH"],
    local = True,
    attrs = {
        "_build_template": attr.label(default = "//third_party/cuda:cuda_toolkit.BUILD.tpl"),
    },
)
