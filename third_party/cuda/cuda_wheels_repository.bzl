"""cuda_wheels_repository: a CUDA toolkit assembled from NVIDIA's hash-pinned PyPI wheels.

Every wheel unpacks under nvidia/cu<major>/ into one tree (bin/, nvvm/, include/, lib/) that nvcc
runs from as it is: its nvcc.profile finds cicc, libdevice, include/ and include/cccl relative to
itself. The tree is a Bazel repository rather than part of the build root because it is only
files (the wheels are manylinux2014 builds that run on any glibc from 2.17), Bazel checks each
download against its hash and keeps it in its repository cache, and every file is an action
input, so the same toolkit serves local, cached and remote builds alike.
"""

load(":cuda_toolkit_repository.bzl", "MIN_DRIVER", "find_host_compiler")

def _cuda_wheels_repository_impl(rctx):
    major = rctx.attr.version.split(".")[0]
    for url in sorted(rctx.attr.wheels):
        rctx.download_and_extract(
            url = url,
            sha256 = rctx.attr.wheels[url],
            type = "zip",
            stripPrefix = "nvidia/cu" + major,
        )
    # Zip files need not keep the executable bit.
    tools = [str(f) for d in ["bin", "nvvm/bin"] for f in rctx.path(d).readdir()]
    rctx.execute(["chmod", "+x"] + tools)
    banner = rctx.execute([rctx.path("bin/nvcc"), "--version"])
    if banner.return_code != 0:
        fail("{}: bin/nvcc --version failed: {}".format(rctx.name, banner.stderr))
    host_compiler, host_stamp = find_host_compiler(rctx)
    pins = "".join(["{} {}\n".format(rctx.attr.wheels[u], u) for u in sorted(rctx.attr.wheels)])
    rctx.file("version.txt", banner.stdout + pins + host_stamp)
    rctx.template("BUILD.bazel", rctx.attr._build_template, {
        "%{host_compiler}": host_compiler,
        "%{version}": rctx.attr.version,
        "%{min_driver}": MIN_DRIVER[major],
    })

cuda_wheels_repository = repository_rule(
    implementation = _cuda_wheels_repository_impl,
    environ = ["CUDA_HOST_COMPILER", "PATH"],
    attrs = {
        "wheels": attr.string_dict(mandatory = True, doc = "Wheel URL -> its sha256."),
        "version": attr.string(mandatory = True, doc = "The toolkit version, e.g. 13.5.37."),
        "_build_template": attr.label(default = "//third_party/cuda:cuda_wheels.BUILD.tpl"),
    },
)
