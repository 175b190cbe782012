"""python_repository: the build's Python interpreter as a toolchain, and its C headers.

The interpreter is FASTDEPLOY_OPS_PYTHON (the build root sets its pinned virtual environment),
else python3 on PATH.
"""

def find_python(rctx):
    """The interpreter the build uses, as a path."""
    explicit = rctx.os.environ.get("FASTDEPLOY_OPS_PYTHON")
    python = rctx.path(explicit) if explicit else rctx.which("python3")
    if not python or not python.exists:
        fail("no Python found (set FASTDEPLOY_OPS_PYTHON or put python3 on PATH)")
    return python

def python_query(rctx, python, code):
    """Runs `code` with the interpreter and returns its stdout."""
    result = rctx.execute([python, "-c", code])
    if result.return_code != 0:
        fail("{} failed:\n{}".format(python, result.stderr))
    return result.stdout.strip()

def _python_repository_impl(rctx):
    python = find_python(rctx)
    include = python_query(rctx, python, "import sysconfig; print(sysconfig.get_paths()['include'])")
    rctx.symlink(include, "include")
    rctx.template("BUILD.bazel", rctx.attr._build_template, {"%{interpreter}": str(python)})

python_repository = repository_rule(
    implementation = _python_repository_impl,
    environ = ["FASTDEPLOY_OPS_PYTHON", "PATH"],
    local = True,
    attrs = {"_build_template": attr.label(default = "//third_party/python:python.BUILD.tpl")},
)
