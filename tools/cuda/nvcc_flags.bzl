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

def gencode(sm):
    """SASS for `sm` plus its PTX, which the drivers of newer GPUs can compile."""
    return "-gencode=arch=compute_{0},code=[sm_{0},compute_{0}]".format(sm)
