"""Providers of the CUDA rules."""

CudaToolkitInfo = provider(
    doc = "The CUDA toolkit a build uses.",
    fields = {
        "nvcc": "Path of the nvcc driver, absolute or in the execution root (identity in stamp).",
        "host_compiler": "Path of the host compiler nvcc runs (-ccbin).",
        "version": "Toolkit version string, for example 12.4.131.",
        "min_driver": "Oldest NVIDIA driver release the toolkit's code runs on, e.g. 525.60.13.",
        "stamp": "File whose content identifies the toolkit; an input of every CUDA action.",
        "headers": "depset of the toolkit's header files.",
        "include_dir": "Execution-root path of the folder holding those headers (nvcc -isystem).",
        "cudart_static": "CcInfo linking the static CUDA runtime.",
        "all_files": "depset of every toolkit file a CUDA action needs.",
    },
)

CudaInstantiationsInfo = provider(
    doc = "The instantiation groups of a cuda_instantiations target that need a higher SM.",
    fields = {
        "min_sm": "dict: short_path of a generated source -> the lowest SM its group runs on.",
        "group_min_sm": "dict: `axis=value` -> the lowest SM of the groups with that value.",
    },
)

CudaSourcesInfo = provider(
    doc = "What compiles a cuda_library for any SM: its sources, headers and extra nvcc flags.",
    fields = {
        "srcs": "list of the .cu Files.",
        "min_sm": "dict: short_path of a source -> its lowest SM, for sources above the library's.",
        "group_min_sm": "dict: `axis=value` of its instantiation groups -> their lowest SM.",
        "headers": "depset of the header Files its sources may include (own and deps').",
        "copts": "Extra nvcc flags (after NVCC_FLAGS).",
    },
)
