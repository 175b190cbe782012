"""The nvcc flags of every CUDA action, shared by cuda_library and the manifests."""

# Without --use_fast_math: routing and sampling kernels rely on IEEE expf and division.
NVCC_FLAGS = [
    "-x",
    "cu",
    "-std=c++17",
    "-O3",
    "-DNDEBUG",
    "-Xcompiler=-fPIC,-fvisibility=hidden",
    # Intermediate files next to the object, named after it rather than after nvcc's pid, so the
    # object is byte-identical between builds, sandboxes and machines.
    "--objdir-as-tempdir",
]

# The -gencode flag, as a pattern of {sm}. Ahead of time: SASS for the SM plus its PTX, which
# the drivers of newer GPUs can compile.
AOT_GENCODE = "-gencode=arch=compute_{sm},code=[sm_{sm},compute_{sm}]"

# Just in time (fastdeploy_ops.jit, which reads it and ARCH_SPECIFIC_SASS from families.json):
# SASS only, since the library is built on and for the GPU it runs on; {sm} is the SASS target
# (90a for SM 9.0).
JIT_GENCODE = "-gencode=arch=compute_{sm},code=sm_{sm}"

# SMs whose SASS is compiled for the architecture-specific target, for instructions only that
# SM has (sm_90a: Hopper's wgmma). Their PTX stays the portable one, which newer GPUs' drivers
# can compile; kernels compiled into it take their portable path.
ARCH_SPECIFIC_SASS = {"90": "90a"}

def gencode(sm):
    """The ahead-of-time -gencode flags of `sm`, a list."""
    sm = str(sm)
    if sm in ARCH_SPECIFIC_SASS:
        return [
            "-gencode=arch=compute_{0},code=sm_{0}".format(ARCH_SPECIFIC_SASS[sm]),
            "-gencode=arch=compute_{0},code=compute_{0}".format(sm),
        ]
    return [AOT_GENCODE.format(sm = sm)]
