"""Providers of the CUDA rules."""

FamilyInfo = provider(
    doc = "A kernel family as built in one per-SM configuration.",
    fields = {
        "name": "Family name, also the suffix of its registration function register_<name>().",
        "min_sm": "Lowest SM the family runs on.",
        "ops": "Names of the ops the family's binding registers.",
        "arch": "The SM of this configuration, as an int (0 when built outside the transition).",
        "skipped_reason": "Why the family is absent from this SM's module, or None if it is present.",
        "kernels": "CcInfo of the family's device code for this SM (empty when skipped).",
        "nvcc_time": "depset of the kernels' nvcc --time CSV files (empty unless --//tools/cuda:nvcc_time).",
    },
)

FamilyBindingInfo = provider(
    doc = "The SM-independent host side of a kernel family: its nanobind binding.",
    fields = {
        "name": "Family name.",
        "cc_info": "CcInfo of the binding library.",
    },
)

CudaToolkitInfo = provider(
    doc = "The CUDA toolkit a build uses.",
    fields = {
        "nvcc": "Absolute path of the nvcc driver (its identity is in stamp).",
        "host_compiler": "Path of the host compiler nvcc runs (-ccbin).",
        "version": "Toolkit version string, for example 12.4.131.",
        "stamp": "File whose content identifies the toolkit; an input of every CUDA action.",
        "headers": "depset of the toolkit's header files.",
        "cudart_static": "CcInfo linking the static CUDA runtime.",
        "all_files": "depset of every toolkit file a CUDA action needs.",
    },
)

CudaSourcesInfo = provider(
    doc = "What compiles a cuda_library for any SM: its sources, headers and extra nvcc flags.",
    fields = {
        "srcs": "list of the .cu Files.",
        "headers": "depset of the header Files its sources may include (own and deps').",
        "copts": "Extra nvcc flags (after NVCC_FLAGS).",
    },
)

FamilySourcesInfo = provider(
    doc = "A kernel family's sources, as fastdeploy_ops.jit compiles them at run time.",
    fields = {
        "name": "Family name.",
        "min_sm": "Lowest SM the family runs on.",
        "ops": "Names of the family's ops.",
        "sources": "CudaSourcesInfo of the family's kernels.",
    },
)
