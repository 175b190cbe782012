"""The Python ABIs an extension module is built for (set per configuration by //tools/python:abi).

abi3: CPython's stable ABI from 3.12 on (nanobind's stable-ABI support starts there): one module
serves 3.12, 3.13, 3.14 and later. cp311: a module for CPython 3.11 alone. Only host code (the
bindings, nanobind, the kernel registry) depends on the ABI; kernels are built once per SM and
linked into each ABI's module.
"""

PYTHON_ABIS = {
    "abi3": struct(
        suffix = ".abi3.so",
        python_tag = "cp312",
        abi_tag = "abi3",
        min_python = "3.12",
    ),
    "cp311": struct(
        suffix = ".cpython-311-x86_64-linux-gnu.so",
        python_tag = "cp311",
        abi_tag = "cp311",
        min_python = "3.11",
    ),
}

def selected_python_abis(abis):
    """`abis` (from --//tools/python:abis or an attribute) checked, without repeats, sorted."""
    unknown = [a for a in abis if a not in PYTHON_ABIS]
    if unknown or not abis:
        fail("Python ABIs {}: expected one or more of {}".format(abis, sorted(PYTHON_ABIS)))
    return sorted({a: None for a in abis}.keys())
