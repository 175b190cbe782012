"""Public API of the CUDA rules: load everything from here, never from //cuda/private.

- `cuda_library`: `.cu` sources compiled by nvcc once per SM of the current configuration.
- `cuda_instantiations`: one generated `.cu` per instantiation group of a kernel template.
- `sm_split_transition`: builds an attribute's targets once per SM of `--//cuda:sms`, each with
  its toolkit (`toolkit_of_sm`: CUDA 13 from SM100 on and for `--//cuda:cuda13_sms`).
- `cuda_toolkit`: a toolkit for toolchain type `//cuda:toolchain_type`.
- `current_arch`, `find_cuda_toolkit`: for rules of their own that build on these.
- Flags shared by every nvcc call: `NVCC_FLAGS`, `gencode` (the -gencode flags of one SM), the
  `-gencode` patterns `AOT_GENCODE` and `JIT_GENCODE`, and `ARCH_SPECIFIC_SASS` (SMs whose SASS
  targets the architecture-specific variant, such as sm_90a).
"""

load("//cuda/private:cuda_instantiations.bzl", _cuda_instantiations = "cuda_instantiations")
load(
    "//cuda/private:cuda_library.bzl",
    _cuda_library = "cuda_library",
    _current_arch = "current_arch",
)
load(
    "//cuda/private:nvcc_flags.bzl",
    _AOT_GENCODE = "AOT_GENCODE",
    _ARCH_SPECIFIC_SASS = "ARCH_SPECIFIC_SASS",
    _JIT_GENCODE = "JIT_GENCODE",
    _NVCC_FLAGS = "NVCC_FLAGS",
    _gencode = "gencode",
)
load(
    "//cuda/private:providers.bzl",
    _CudaInstantiationsInfo = "CudaInstantiationsInfo",
    _CudaSourcesInfo = "CudaSourcesInfo",
    _CudaToolkitInfo = "CudaToolkitInfo",
)
load(
    "//cuda/private:sm_transition.bzl",
    _sm_split_transition = "sm_split_transition",
    _toolkit_of_sm = "toolkit_of_sm",
)
load(
    "//cuda/private:toolkit.bzl",
    _TOOLCHAIN_TYPE = "TOOLCHAIN_TYPE",
    _cuda_toolkit = "cuda_toolkit",
    _find_cuda_toolkit = "find_cuda_toolkit",
)

cuda_library = _cuda_library
cuda_instantiations = _cuda_instantiations
cuda_toolkit = _cuda_toolkit
sm_split_transition = _sm_split_transition
toolkit_of_sm = _toolkit_of_sm
current_arch = _current_arch
find_cuda_toolkit = _find_cuda_toolkit
CUDA_TOOLCHAIN_TYPE = _TOOLCHAIN_TYPE
CudaInstantiationsInfo = _CudaInstantiationsInfo
CudaSourcesInfo = _CudaSourcesInfo
CudaToolkitInfo = _CudaToolkitInfo
NVCC_FLAGS = _NVCC_FLAGS
AOT_GENCODE = _AOT_GENCODE
JIT_GENCODE = _JIT_GENCODE
ARCH_SPECIFIC_SASS = _ARCH_SPECIFIC_SASS
gencode = _gencode
