"""The GPU test suite shipped in the wheel; run it with ``python -m fastdeploy_ops.selftest``.

Every test skips with a reason where it cannot run (no GPU, no usable module, an op the loaded
module was built without).
"""
