"""cuda_toolkit: describes a CUDA toolkit; registered as a toolchain of //cuda:toolchain_type."""

load("@bazel_skylib//lib:paths.bzl", "paths")
load(":providers.bzl", "CudaToolkitInfo")

TOOLCHAIN_TYPE = Label("//cuda:toolchain_type")

def _cuda_toolkit_impl(ctx):
    if bool(ctx.attr.nvcc) == bool(ctx.file.nvcc_file):
        fail("cuda_toolkit {}: give exactly one of nvcc and nvcc_file".format(ctx.label))
    headers = depset(ctx.files.headers)
    files = [ctx.file.stamp] + ctx.files.files
    if ctx.file.nvcc_file:
        files.append(ctx.file.nvcc_file)
    toolkit = CudaToolkitInfo(
        nvcc = ctx.attr.nvcc or ctx.file.nvcc_file.path,
        host_compiler = ctx.attr.host_compiler,
        version = ctx.attr.version,
        min_driver = ctx.attr.min_driver,
        stamp = ctx.file.stamp,
        headers = headers,
        include_dir = paths.join(ctx.label.workspace_root, ctx.label.package, ctx.attr.include_dir),
        cudart_static = ctx.attr.cudart_static[CcInfo],
        all_files = depset(files, transitive = [headers]),
    )
    return [toolkit, platform_common.ToolchainInfo(cuda_toolkit = toolkit)]

cuda_toolkit = rule(
    implementation = _cuda_toolkit_impl,
    doc = """A CUDA toolkit: nvcc, its host compiler, headers and static runtime.

Wrap it in a `toolchain(toolchain_type = "//cuda:toolchain_type")` and register that: the CUDA
rules find their toolkit through toolchain resolution. Several can be registered, each with
`target_settings` on //cuda:toolkit (which the SM transition sets per SM), so one build compiles
each SM with the toolkit that can target it.""",
    attrs = {
        "nvcc": attr.string(doc = "Absolute path of an installed nvcc (a system toolkit)."),
        "nvcc_file": attr.label(
            allow_single_file = True,
            doc = "nvcc as a file of the build (a downloaded toolkit); `files` are its inputs.",
        ),
        "files": attr.label_list(
            allow_files = True,
            doc = "Every file nvcc_file runs with (its tools, libdevice, headers, profile).",
        ),
        "host_compiler": attr.string(mandatory = True, doc = "Absolute path of nvcc's host compiler."),
        "version": attr.string(mandatory = True),
        "min_driver": attr.string(
            mandatory = True,
            doc = "Oldest NVIDIA driver release its code runs on, e.g. 525.60.13.",
        ),
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

def _cuda_runtime_headers_impl(ctx):
    toolkit = find_cuda_toolkit(ctx)
    return [CcInfo(compilation_context = cc_common.create_compilation_context(
        headers = toolkit.headers,
        system_includes = depset([toolkit.include_dir]),
    ))]

cuda_runtime_headers = rule(
    implementation = _cuda_runtime_headers_impl,
    doc = "The headers of the toolkit resolved for the current configuration, as a cc dependency.",
    toolchains = [TOOLCHAIN_TYPE],
)
