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

# Just in time (fastdeploy_ops.jit, which reads it from families.json): SASS only, since the
# library is built on and for the GPU it runs on.
JIT_GENCODE = "-gencode=arch=compute_{sm},code=sm_{sm}"

def gencode(sm):
    """The ahead-of-time -gencode flag of `sm`."""
    return AOT_GENCODE.format(sm = sm)
