"""fastdeploy_ops_wheel: the project's wheel, around a given set of extension modules."""

load("//python:version.bzl", "VERSION")
load("//tools/ops:wheel.bzl", "ops_wheel")

def fastdeploy_ops_wheel(name, extension, **kwargs):
    """The fastdeploy_ops wheel of `extension` (an ops_extension target).

    Args:
      name: target name; the wheel is written to bazel-bin/<package>/<name>/.
      extension: the ops_extension whose modules and manifests the wheel carries.
      **kwargs: visibility, tags, ...
    """
    ops_wheel(
        name = name,
        srcs = [
            "//python:package_files",
            "//python:torch_operators",
        ],
        strip_prefix = "python",
        description = "//:README.md",
        distribution = "fastdeploy_ops",
        extension = extension,
        jit_sources = "//python:jit_sources",
        summary = "CUDA kernels for LLM serving, built per GPU architecture",
        version = VERSION,
        **kwargs
    )
