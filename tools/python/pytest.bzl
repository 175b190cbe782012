"""pytest_test: one pytest file as a Bazel test, run by the build's Python."""

load("@rules_python//python:defs.bzl", "py_test")

def pytest_test(name, src, wheel = None, deps = [], data = [], env = {}, **kwargs):
    """Runs `src` with pytest.

    Args:
      name: test name.
      src: the test file; conftest.py of its package is collected as usual.
      wheel: an ops_wheel target whose folder the test finds in FASTDEPLOY_OPS_WHEEL_DIR.
      deps: py_library deps.
      data: runtime files.
      env: environment of the test.
      **kwargs: size, tags, timeout, ...
    """
    if wheel:
        data = data + [wheel]
        env = dict(env, FASTDEPLOY_OPS_WHEEL_DIR = "$(rootpath {})".format(wheel))
    py_test(
        name = name,
        srcs = [src, "//tools/python:pytest_main.py"],
        main = "//tools/python:pytest_main.py",
        args = ["$(rootpath {})".format(src)],
        deps = deps,
        data = data + native.glob(["conftest.py"]),
        env = env,
        **kwargs
    )
