"""The split transition that builds the families' host code once per Python ABI and toolkit."""

load("//cuda:defs.bzl", "toolkit_of_sm")
load("//tools/python:abi.bzl", "selected_python_abis")

_ABIS = "//tools/python:abis"
_ABI = "//tools/python:abi"
_SMS = "//cuda:sms"
_CUDA13_SMS = "//cuda:cuda13_sms"
_TOOLKIT = "//cuda:toolkit"

def binding_key(abi, toolkit):
    """The split key of the bindings for one Python ABI and one //cuda:toolkit value."""
    return abi + ("-cuda" + toolkit if toolkit else "")

def _binding_split_impl(settings, attr):
    sms = attr.sms if attr.sms else settings[_SMS]
    toolkits = {toolkit_of_sm(sm, settings[_CUDA13_SMS]): None for sm in sms}
    abis = selected_python_abis(attr.python_abis or settings[_ABIS])

    # The bindings include the CUDA runtime's headers, so each toolkit of the build gets its own;
    # those of the default toolkit and the stable ABI are the top-level configuration itself.
    return {
        binding_key(abi, toolkit): {_ABI: abi, _TOOLKIT: toolkit}
        for abi in abis
        for toolkit in sorted(toolkits)
    }

binding_split_transition = transition(
    implementation = _binding_split_impl,
    inputs = [_ABIS, _SMS, _CUDA13_SMS],
    outputs = [_ABI, _TOOLKIT],
)
