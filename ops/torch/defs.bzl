"""torch_operators_library: the torch operators' shared library, named for its torch release."""

load("@torch//:defs.bzl", "TORCH_RELEASE")

# Linked by path, so the library needs these by soname only: the imported torch provides them.
_TORCH_LIBRARIES = [
    "@torch//:lib/libc10.so",
    "@torch//:lib/libc10_cuda.so",
    "@torch//:lib/libtorch_cpu.so",
]

# The build root's own libstdc++ (newer than gcc 10's).
_SHARED_LIBSTDCXX = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6"

def torch_operators_library(name, package_dir, deps, **kwargs):
    """`<package_dir>/_torch_ops_<major>_<minor>.so` and an alias `name` to it.

    fastdeploy_ops._torch_library loads the library whose name matches the imported torch's
    release, and none under another release (torch's C++ ABI changes between releases).

    Args:
      name: the alias.
      package_dir: the Python package folder the library is in.
      deps: the code (cc_library with alwayslink).
      **kwargs: visibility, tags, ...
    """
    library = "{}/_torch_ops_{}.so".format(package_dir, TORCH_RELEASE)
    native.cc_binary(
        name = library,
        linkshared = True,
        deps = deps,
        additional_linker_inputs = _TORCH_LIBRARIES,
        linkopts = ["$(execpath {})".format(lib) for lib in _TORCH_LIBRARIES] + [
            # The shared C++ runtime, the one torch uses (the toolchain links the static one,
            # and the sysroot has no shared one): c10's exceptions are thrown here and caught in
            # torch. Compiled with gcc 10's headers, the library needs only its symbol versions.
            _SHARED_LIBSTDCXX,
            "-Wl,--build-id=none",
            "-Wl,--strip-all",
        ],
        **kwargs
    )
    native.alias(name = name, actual = library, **kwargs)
