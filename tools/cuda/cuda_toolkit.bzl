"""cuda_toolkit: describes a CUDA toolkit to the CUDA rules (instantiated by third_party/cuda)."""

load("//tools/cuda:providers.bzl", "CudaToolkitInfo")

def _cuda_toolkit_impl(ctx):
    headers = depset(ctx.files.headers)
    return [CudaToolkitInfo(
        nvcc = ctx.attr.nvcc,
        host_compiler = ctx.attr.host_compiler,
        version = ctx.attr.version,
        stamp = ctx.file.stamp,
        headers = headers,
        cudart_static = ctx.attr.cudart_static[CcInfo],
        all_files = depset([ctx.file.stamp], transitive = [headers]),
    )]

cuda_toolkit = rule(
    implementation = _cuda_toolkit_impl,
    attrs = {
        "nvcc": attr.string(mandatory = True, doc = "Absolute path of nvcc."),
        "host_compiler": attr.string(mandatory = True, doc = "Absolute path of nvcc's host compiler."),
        "version": attr.string(mandatory = True),
        "stamp": attr.label(mandatory = True, allow_single_file = True),
        "headers": attr.label_list(allow_files = True),
        "cudart_static": attr.label(mandatory = True, providers = [CcInfo]),
    },
)
