"""ops_family: a kernel family (device code plus its nanobind binding) and its SM gate."""

load("@bazel_skylib//rules:common_settings.bzl", "BuildSettingInfo")
load(
    "//cuda:defs.bzl",
    "CUDA_TOOLCHAIN_TYPE",
    "CudaSourcesInfo",
    "cuda_library",
    "current_arch",
    "find_cuda_toolkit",
)
load(":providers.bzl", "FamilyBindingInfo", "FamilyInfo", "FamilySourcesInfo")

def _ops_family_impl(ctx):
    arch = current_arch(ctx)
    skipped_reason = None
    if arch and arch < ctx.attr.min_sm:
        skipped_reason = "requires SM{}+, this module is sm{}".format(ctx.attr.min_sm, arch)
    sources = ctx.attr.kernels[CudaSourcesInfo]
    return [
        FamilyInfo(
            name = ctx.attr.family,
            min_sm = ctx.attr.min_sm,
            ops = ctx.attr.ops,
            arch = arch,
            skipped_reason = skipped_reason,
            group_min_sm = sources.group_min_sm,
            kernels = ctx.attr.kernels[CcInfo],
            toolkit = find_cuda_toolkit(ctx),
            toolkit_setting = ctx.attr._toolkit[BuildSettingInfo].value,
            nvcc_time = ctx.attr.kernels[OutputGroupInfo].nvcc_time,
        ),
        FamilyBindingInfo(
            name = ctx.attr.family,
            cc_info = ctx.attr.binding[CcInfo],
        ),
        FamilySourcesInfo(
            name = ctx.attr.family,
            min_sm = ctx.attr.min_sm,
            ops = ctx.attr.ops,
            sources = sources,
        ),
    ]

_ops_family = rule(
    implementation = _ops_family_impl,
    attrs = {
        "family": attr.string(mandatory = True),
        "ops": attr.string_list(mandatory = True),
        "min_sm": attr.int(mandatory = True),
        "kernels": attr.label(mandatory = True, providers = [CcInfo, CudaSourcesInfo]),
        "binding": attr.label(mandatory = True, providers = [CcInfo]),
        "_arch": attr.label(default = "//cuda:arch"),
        "_toolkit": attr.label(default = "//cuda:toolkit"),
    },
    toolchains = [CUDA_TOOLCHAIN_TYPE],
)

def ops_family(name, srcs, hdrs, binding, ops, min_sm, deps = [], copts = [], visibility = None):
    """Declares a kernel family.

    Creates `<name>_kernels` (cuda_library of srcs, compiled per SM when min_sm allows),
    `<name>_binding` (cc_library of the nanobind binding, which defines
    `void fdops::register_<name>(nanobind::module_&)`), and `<name>`, which ops_extension
    consumes.

    Args:
      name: family name; also the Python-visible family name.
      srcs: .cu files.
      hdrs: headers of the family (launch declarations and device code).
      binding: the binding .cc file.
      ops: names of the ops the binding registers.
      min_sm: lowest SM the family runs on; lower SMs skip it, with the reason recorded.
      deps: cc/cuda libraries the kernels and binding need.
      copts: extra nvcc flags.
      visibility: of the family target.
    """
    cuda_library(
        name = name + "_kernels",
        srcs = srcs,
        hdrs = hdrs,
        deps = deps + ["//ops/common"],
        copts = copts,
        min_sm = min_sm,
    )
    native.cc_library(
        name = name + "_binding",
        srcs = [binding],
        # nanobind's types are hidden; so must be everything that holds them.
        copts = ["-fvisibility=hidden"],
        deps = [
            ":" + name + "_kernels",
            "//ops/common:binding",
        ],
    )
    _ops_family(
        name = name,
        family = name,
        ops = ops,
        min_sm = min_sm,
        kernels = ":" + name + "_kernels",
        binding = ":" + name + "_binding",
        visibility = visibility,
    )
