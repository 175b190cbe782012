"""python_repository: the build's Python interpreter as a toolchain, and the C headers of the
extension modules' Python ABIs.

The interpreter is FASTDEPLOY_OPS_PYTHON (the build root sets its pinned virtual environment),
else python3 on PATH; its headers serve the stable-ABI (abi3) modules. The CPython 3.11 headers
of the cp311 modules are FASTDEPLOY_OPS_PYTHON311_INCLUDE (the build root's sysroot has them).
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

def _link_headers(rctx, include, folder):
    """Links the C headers of the Python whose include folder is `include` into `folder`.

    Debian's pyconfig.h only includes <x86_64-linux-gnu/pythonX.Y/pyconfig.h> from the system
    folder, which a sysroot does not have: the folder gets that file as its pyconfig.h instead.
    """
    include = rctx.path(include)
    if not include.get_child("Python.h").exists:
        fail("{} has no Python.h".format(include))
    multiarch = include.dirname.get_child("x86_64-linux-gnu").get_child(include.basename)
    for entry in include.readdir():
        target = entry
        if entry.basename == "pyconfig.h" and multiarch.get_child("pyconfig.h").exists:
            target = multiarch.get_child("pyconfig.h")
        rctx.symlink(target, "{}/{}".format(folder, entry.basename))

def _python_repository_impl(rctx):
    python = find_python(rctx)
    include = python_query(rctx, python, "import sysconfig; print(sysconfig.get_paths()['include'])")
    _link_headers(rctx, include, "include")

    # The headers of the cp311 modules, where the build root provides them.
    include311 = rctx.os.environ.get("FASTDEPLOY_OPS_PYTHON311_INCLUDE", "")
    if include311:
        _link_headers(rctx, include311, "include311")
    rctx.template("BUILD.bazel", rctx.attr._build_template, {
        "%{interpreter}": str(python),
        "%{include311}": include311,
    })

python_repository = repository_rule(
    implementation = _python_repository_impl,
    environ = ["FASTDEPLOY_OPS_PYTHON", "FASTDEPLOY_OPS_PYTHON311_INCLUDE", "PATH"],
    local = True,
    attrs = {"_build_template": attr.label(default = "//third_party/python:python.BUILD.tpl")},
)
