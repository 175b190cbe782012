"""The Python ABIs an extension module is built for, and the transition that builds each one.

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

_ABIS = "//tools/python:abis"
_ABI = "//tools/python:abi"

def _python_abi_split_impl(settings, attr):
    abis = attr.python_abis if attr.python_abis else settings[_ABIS]
    unknown = [a for a in abis if a not in PYTHON_ABIS]
    if unknown or not abis:
        fail("Python ABIs {}: expected one or more of {}".format(abis, sorted(PYTHON_ABIS)))

    # Only the ABI changes: the abi3 branch is the top-level configuration itself.
    return {abi: {_ABI: abi} for abi in sorted({a: None for a in abis}.keys())}

python_abi_split_transition = transition(
    implementation = _python_abi_split_impl,
    inputs = [_ABIS],
    outputs = [_ABI],
)
