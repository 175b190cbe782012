"""The CUDA 13 toolkit as NVIDIA publishes it on PyPI, pinned by hash (x86-64 Linux wheels).

nvidia-cuda-nvcc holds nvcc, cudafe++, ptxas, nvlink and fatbinary; nvidia-nvvm holds cicc and
libdevice; nvidia-cuda-crt the crt headers; nvidia-cuda-runtime the runtime headers and
libcudart_static.a; nvidia-cuda-cccl libcu++ (cuda/std, nv/target); nvidia-cuda-cuobjdump the
tool the tests list a module's SASS with. Each unpacks under nvidia/cu13/. To update, take the
file's URL and sha256 from https://pypi.org/simple/<package>/.
"""

CUDA13_VERSION = "13.5.37"

_PYPI = "https://files.pythonhosted.org/packages/"

CUDA13_WHEELS = {
    _PYPI + "0b/7d/21c734e63423dc53fb1b1ebbb6dee84e9ccafbeeaa30e9ae07e6fdcdd15b/nvidia_cuda_nvcc-13.5.37-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl": "f5c4f7ead5d964fb4af42bbf1e6d3ec3c1e6e9d83b53749f691d387e7fcaa3a7",
    _PYPI + "23/dc/c7089283bad8e8089825b0cae0898f8a89b5d27bdb2edea5266d259101e1/nvidia_nvvm-13.5.37-py3-none-manylinux2010_x86_64.manylinux_2_12_x86_64.whl": "c41bfa362e407405163f103c2229f0765f8cc2ed7d148b754dc77f228bf7e070",
    _PYPI + "d5/ac/fb3ca43f437405ce33bfd8ba64503148fdc9198265f26f8ecd1bd6e76338/nvidia_cuda_crt-13.5.37-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl": "e898b7f73d3035fa89915a3f7bf3b54a73e90249746111aed295822c4729bb29",
    _PYPI + "0b/7c/14b8f5518f8951e9dca57ea80f44f8ea8bcc8671812e6cc38009f3205e57/nvidia_cuda_runtime-13.5.37-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl": "df2b79a8852f10d1fef8c848489c49eebb5754051bf870202a862831412b179d",
    _PYPI + "a7/7e/4aa67cca14e0558b5a151a692f5ffe609930cdfc20d16c7a584de68424d4/nvidia_cuda_cccl-13.3.5.0.6-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl": "d5230098fa2df5021e1a00c0c4eee41797671a91119d31e892463e5ccf3ee326",
    _PYPI + "6f/b1/d40f46787547bb9a7d3203086aab3e2eb7fd7610df6ef8ded6f48e418195/nvidia_cuda_cuobjdump-13.4.92-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl": "fb72ca80d0cdd8f5e8e232ce17d3c5aa2a37c3153bb8ef4e010010ed4fdef6c5",
}
