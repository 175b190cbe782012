"""cuda_library: CUDA sources compiled by nvcc for the SM of the current configuration."""

load("@bazel_skylib//rules:common_settings.bzl", "BuildSettingInfo")
load("@bazel_tools//tools/cpp:toolchain_utils.bzl", "find_cpp_toolchain", "use_cpp_toolchain")
load(":nvcc_flags.bzl", "NVCC_FLAGS", "gencode")
load(":providers.bzl", "CudaInstantiationsInfo", "CudaSourcesInfo")
load(":toolkit.bzl", "TOOLCHAIN_TYPE", "find_cuda_toolkit")

def current_arch(ctx):
    """The SM of this configuration as an int, or 0 outside the per-SM transition."""
    arch = ctx.attr._arch[BuildSettingInfo].value
    return int(arch) if arch else 0

def _include_flags(compilation_context):
    flags = []
    for d in compilation_context.includes.to_list():
        flags.extend(["-I", d])
    for d in compilation_context.quote_includes.to_list():
        flags.extend(["-I", d])
    for d in compilation_context.system_includes.to_list():
        flags.extend(["-isystem", d])
    for d in compilation_context.defines.to_list():
        flags.append("-D" + d)
    return flags

def _nvcc_flags(ctx, toolkit, arch):
    threads = ctx.attr._nvcc_threads[BuildSettingInfo].value
    return ["-ccbin", toolkit.host_compiler] + NVCC_FLAGS + [
        "--threads={}".format(threads),
    ] + gencode(arch) + ctx.attr.copts

def _compile(ctx, toolkit, arch, src, compilation_context):
    """One nvcc action; returns (object, nvcc --time CSV or None)."""
    obj = ctx.actions.declare_file("_objs/{}/{}.o".format(ctx.label.name, src.basename))
    outputs = [obj]
    timing = None
    if ctx.attr._nvcc_time[BuildSettingInfo].value:
        timing = ctx.actions.declare_file(obj.basename + ".nvcc_time.csv", sibling = obj)
        outputs.append(timing)
    args = ctx.actions.args()
    args.add(toolkit.nvcc)
    args.add_all(_nvcc_flags(ctx, toolkit, arch))
    # gcc's per-object random names (anonymous namespaces, LTO) seeded by the output path.
    args.add("-Xcompiler=-frandom-seed=" + obj.short_path)
    args.add_all(["-I", ".", "-I", ctx.bin_dir.path])
    args.add_all(_include_flags(compilation_context))
    args.add_all(["-isystem", toolkit.include_dir])
    if timing:
        args.add("--time", timing)
    args.add_all(["-c", src, "-o", obj])
    ctx.actions.run(
        executable = ctx.executable._nvcc_wrapper,
        arguments = [args],
        inputs = depset(
            [src, toolkit.stamp],
            transitive = [compilation_context.headers, toolkit.all_files],
        ),
        outputs = outputs,
        mnemonic = "CudaCompile",
        progress_message = "Compiling CUDA {} for sm_{}".format(src.short_path, arch),
        env = {"PATH": "/usr/bin:/bin"},
    )
    return obj, timing

def _cuda_library_impl(ctx):
    toolkit = find_cuda_toolkit(ctx)
    cc_toolchain = find_cpp_toolchain(ctx)
    arch = current_arch(ctx)

    own_headers = cc_common.create_compilation_context(
        headers = depset(ctx.files.hdrs),
    )
    dep_cc_infos = [d[CcInfo] for d in ctx.attr.deps]
    compilation_context = cc_common.merge_compilation_contexts(
        compilation_contexts = [own_headers] + [c.compilation_context for c in dep_cc_infos],
    )

    source_min_sm = {}
    group_min_sm = {}
    for src in ctx.attr.srcs:
        if CudaInstantiationsInfo in src:
            source_min_sm.update(src[CudaInstantiationsInfo].min_sm)
            group_min_sm.update(src[CudaInstantiationsInfo].group_min_sm)
    sources = CudaSourcesInfo(
        srcs = ctx.files.srcs,
        min_sm = source_min_sm,
        group_min_sm = group_min_sm,
        headers = compilation_context.headers,
        copts = ctx.attr.copts,
    )

    # Outside the transition, or below min_sm, the library contributes only its headers.
    if arch == 0 or arch < ctx.attr.min_sm:
        return [
            CcInfo(compilation_context = compilation_context),
            sources,
            OutputGroupInfo(nvcc_time = depset()),
        ]

    compiled = [_compile(ctx, toolkit, arch, src, compilation_context) for src in ctx.files.srcs]
    objects = [obj for obj, _ in compiled]
    timings = [timing for _, timing in compiled if timing]
    feature_configuration = cc_common.configure_features(
        ctx = ctx,
        cc_toolchain = cc_toolchain,
        requested_features = ctx.features,
        unsupported_features = ctx.disabled_features,
    )
    linking_context, _ = cc_common.create_linking_context_from_compilation_outputs(
        actions = ctx.actions,
        feature_configuration = feature_configuration,
        cc_toolchain = cc_toolchain,
        compilation_outputs = cc_common.create_compilation_outputs(
            objects = depset(objects),
            pic_objects = depset(objects),
        ),
        linking_contexts = [c.linking_context for c in dep_cc_infos] +
                           [toolkit.cudart_static.linking_context],
        name = ctx.label.name,
        disallow_dynamic_library = True,
    )
    return [
        CcInfo(compilation_context = compilation_context, linking_context = linking_context),
        DefaultInfo(files = depset(objects)),
        sources,
        OutputGroupInfo(nvcc_time = depset(timings)),
    ]

cuda_library = rule(
    implementation = _cuda_library_impl,
    doc = """CUDA sources compiled once per SM.

Each source is one nvcc action for the SM that the per-SM transition put in //cuda:arch
(SASS for it plus PTX). Returns CcInfo, so cc rules can depend on it. Outside the transition or
below min_sm it compiles nothing and provides only its headers. CudaSourcesInfo describes the
sources for a compiler outside Bazel (fastdeploy_ops.jit). With --//cuda:nvcc_time, the
output group nvcc_time holds each action's `nvcc --time` CSV.""",
    attrs = {
        "srcs": attr.label_list(allow_files = [".cu"]),
        "hdrs": attr.label_list(allow_files = [".h", ".cuh"]),
        "deps": attr.label_list(providers = [CcInfo]),
        "copts": attr.string_list(doc = "Extra nvcc flags."),
        "min_sm": attr.int(default = 70, doc = "Lowest SM this library is compiled for."),
        "_arch": attr.label(default = "//cuda:arch"),
        "_nvcc_threads": attr.label(default = "//cuda:nvcc_threads"),
        "_nvcc_time": attr.label(default = "//cuda:nvcc_time"),
        "_nvcc_wrapper": attr.label(
            default = "//cuda:nvcc_wrapper",
            executable = True,
            cfg = "exec",
        ),
    },
    fragments = ["cpp"],
    toolchains = use_cpp_toolchain() + [TOOLCHAIN_TYPE],
)
