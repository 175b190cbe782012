"""torch_repository: PyTorch's C++ headers and libraries from the build's torch environment.

The torch operators' C++ implementation (//ops/torch) compiles against the torch release the
build root pins (tools/buildroot/torch-requirements.lock) and is loaded only under that release:
its C++ API and ABI are not stable across releases. The environment is FASTDEPLOY_OPS_TORCH_PYTHON,
else the build root's /opt/fastdeploy-ops/venv-torch.
"""

load("//third_party/python:python_repository.bzl", "python_query")

_DEFAULT_PYTHON = "/opt/fastdeploy-ops/venv-torch/bin/python3"

def _torch_repository_impl(rctx):
    python = rctx.path(rctx.os.environ.get("FASTDEPLOY_OPS_TORCH_PYTHON", _DEFAULT_PYTHON))
    if not python.exists:
        fail("no torch environment at {} (set FASTDEPLOY_OPS_TORCH_PYTHON)".format(python))

    # Found without importing torch (seconds): the package folder and its version.py.
    package = rctx.path(python_query(
        rctx,
        python,
        "import importlib.util; print(importlib.util.find_spec('torch').submodule_search_locations[0])",
    ))
    version = None
    for line in rctx.read(package.get_child("version.py")).splitlines():
        if line.startswith("__version__"):
            version = line.split("=", 1)[1].strip().strip("'\"")
    if not version:
        fail("{}/version.py has no __version__".format(package))
    release = version.split("+")[0].split(".")
    for child in ["include", "lib"]:
        rctx.symlink(package.get_child(child), child)
    rctx.template("BUILD.bazel", rctx.attr._build_template, {"%{version}": version})
    rctx.file("defs.bzl", "\n".join([
        '"""The torch release the operators are built against (generated)."""',
        "",
        "TORCH_VERSION = \"{}\"".format(version),
        "# major_minor: the release the library's name carries (_torch_ops_2_11.so).",
        "TORCH_RELEASE = \"{}_{}\"".format(release[0], release[1]),
        "",
    ]))

torch_repository = repository_rule(
    implementation = _torch_repository_impl,
    environ = ["FASTDEPLOY_OPS_TORCH_PYTHON"],
    local = True,
    attrs = {"_build_template": attr.label(default = "//third_party/torch:torch.BUILD.tpl")},
)
