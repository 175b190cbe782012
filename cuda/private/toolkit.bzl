"""cuda_toolkit: describes a CUDA toolkit; registered as a toolchain of //cuda:toolchain_type."""

load("@bazel_skylib//lib:paths.bzl", "paths")
load(":providers.bzl", "CudaToolkitInfo")

TOOLCHAIN_TYPE = Label("//cuda:toolchain_type")

def _cuda_toolkit_impl(ctx):
    headers = depset(ctx.files.headers)
    toolkit = CudaToolkitInfo(
        nvcc = ctx.attr.nvcc,
        host_compiler = ctx.attr.host_compiler,
        version = ctx.attr.version,
        stamp = ctx.file.stamp,
        headers = headers,
        include_dir = paths.join(ctx.label.workspace_root, ctx.label.package, ctx.attr.include_dir),
        cudart_static = ctx.attr.cudart_static[CcInfo],
        all_files = depset([ctx.file.stamp], transitive = [headers]),
    )
    return [toolkit, platform_common.ToolchainInfo(cuda_toolkit = toolkit)]

cuda_toolkit = rule(
    implementation = _cuda_toolkit_impl,
    doc = """A CUDA toolkit: nvcc, its host compiler, headers and static runtime.

Wrap it in a `toolchain(toolchain_type = "//cuda:toolchain_type")` and register that: the CUDA
rules find their toolkit through toolchain resolution, so a build can register several (one per
SM, selected with `target_settings`) without any rule naming a repository.""",
    attrs = {
        "nvcc": attr.string(mandatory = True, doc = "Absolute path of nvcc."),
        "host_compiler": attr.string(mandatory = True, doc = "Absolute path of nvcc's host compiler."),
        "version": attr.string(mandatory = True),
        "stamp": attr.label(mandatory = True, allow_single_file = True),
        "headers": attr.label_list(allow_files = True),
        "include_dir": attr.string(
            mandatory = True,
            doc = "Folder of `headers`, relative to this package: nvcc searches it as a system " +
                  "folder, so the toolkit needs no place among the C library's headers.",
        ),
        "cudart_static": attr.label(mandatory = True, providers = [CcInfo]),
    },
)

def find_cuda_toolkit(ctx):
    """The CudaToolkitInfo that toolchain resolution chose for `ctx`'s configuration."""
    return ctx.toolchains[TOOLCHAIN_TYPE].cuda_toolkit
