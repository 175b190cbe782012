"""Providers of the CUDA rules."""

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
