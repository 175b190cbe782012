"""The split transition that builds its dependencies once per SM."""

_SMS = "//cuda:sms"
_ARCH = "//cuda:arch"

def _sm_split_impl(settings, attr):
    sms = attr.sms if attr.sms else settings[_SMS]
    if not sms:
        fail("no SM selected: pass --config=smNN (for example --config=sm80)")

    # Only arch changes, so a branch's output paths and action keys do not depend on which other
    # SMs are built: adding sm90 to an sm80 build reuses every sm80 action.
    return {sm: {_ARCH: sm} for sm in sorted({sm: None for sm in sms}.keys(), key = int)}

sm_split_transition = transition(
    implementation = _sm_split_impl,
    inputs = [_SMS],
    outputs = [_ARCH],
)
