"""The split transition that builds its dependencies once per SM, each with its toolkit."""

_SMS = "//cuda:sms"
_CUDA13_SMS = "//cuda:cuda13_sms"
_ARCH = "//cuda:arch"
_TOOLKIT = "//cuda:toolkit"

# CUDA 12.4, the default toolkit, is the last to target sm_70 and cannot target sm_100 or newer.
_CUDA13_FROM_SM = 100

def toolkit_of_sm(sm, cuda13_sms):
    """The //cuda:toolkit value an SM is built with: "13" or "" (the default toolkit)."""
    return "13" if int(sm) >= _CUDA13_FROM_SM or sm in cuda13_sms else ""

def _sm_split_impl(settings, attr):
    sms = attr.sms if attr.sms else settings[_SMS]
    if not sms:
        fail("no SM selected: pass --config=smNN (for example --config=sm80)")

    # Only arch and toolkit change, so a branch's output paths and action keys do not depend on
    # which other SMs are built: adding sm90 to an sm80 build reuses every sm80 action.
    return {
        sm: {_ARCH: sm, _TOOLKIT: toolkit_of_sm(sm, settings[_CUDA13_SMS])}
        for sm in sorted({sm: None for sm in sms}.keys(), key = int)
    }

sm_split_transition = transition(
    implementation = _sm_split_impl,
    inputs = [_SMS, _CUDA13_SMS],
    outputs = [_ARCH, _TOOLKIT],
)
