"""nanobind_repository: nanobind's sources from the pinned Python package, as a cc_library."""

load("//third_party/python:python_repository.bzl", "find_python", "python_query")

def _nanobind_repository_impl(rctx):
    python = find_python(rctx)
    source_dir = python_query(rctx, python, "import nanobind; print(nanobind.source_dir())")
    root = rctx.path(source_dir).dirname
    for child in ["include", "src", "ext"]:
        rctx.symlink(root.get_child(child), child)
    version = python_query(rctx, python, "import nanobind; print(nanobind.__version__)")
    rctx.template("BUILD.bazel", rctx.attr._build_template, {"%{version}": version})

nanobind_repository = repository_rule(
    implementation = _nanobind_repository_impl,
    environ = ["FASTDEPLOY_OPS_PYTHON", "PATH"],
    local = True,
    attrs = {"_build_template": attr.label(default = "//third_party/nanobind:nanobind.BUILD.tpl")},
)
