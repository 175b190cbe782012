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

def pytest_tests(srcs, overrides = {}, **kwargs):
    """One pytest_test per file of `srcs`, named after the file (`test_x.py` -> `test_x`).

    A new test file is then a new target without editing the BUILD file.

    Args:
      srcs: the test files, usually glob(["test_*.py"]).
      overrides: test name -> pytest_test arguments that replace those of kwargs for that test
        only (a test that needs an environment variable, or no wheel).
      **kwargs: pytest_test arguments of every test (wheel, deps, size, ...).
    """
    names = [src.removesuffix(".py") for src in srcs]
    unknown = [name for name in overrides if name not in names]
    if unknown:
        fail("pytest_tests: overrides name tests without a file in srcs: {}".format(unknown))
    for name, src in zip(names, srcs):
        pytest_test(
            name = name,
            src = src,
            **dict(kwargs, **overrides.get(name, {}))
        )
