"""ops_wheel: the installable wheel of the Python package and its per-SM extension modules."""

load("//tools/python:abi.bzl", "PYTHON_ABIS")
load(":extension.bzl", "OpsExtensionInfo")
load(":jit_sources.bzl", "JitSourcesInfo")

def _package_path(file, strip_prefix):
    path = file.short_path
    if not path.startswith(strip_prefix):
        fail("{} is not under {}".format(path, strip_prefix))
    return path[len(strip_prefix):]

def _ops_wheel_impl(ctx):
    extension = ctx.attr.extension[OpsExtensionInfo]
    strip_prefix = ctx.attr.strip_prefix + "/" if ctx.attr.strip_prefix else ""
    entries = {_package_path(f, strip_prefix): f for f in ctx.files.srcs}
    for sm in extension.modules:
        for f in extension.modules[sm].values() + [extension.manifests[sm]]:
            entries["{}/{}".format(extension.package_dir, f.basename)] = f
    if ctx.attr.jit_sources:
        entries.update(ctx.attr.jit_sources[JitSourcesInfo].files)

    out_dir = ctx.actions.declare_directory(ctx.label.name)
    args = ctx.actions.args()
    args.add("--out_dir", out_dir.path)
    args.add("--distribution", ctx.attr.distribution)
    args.add("--version", ctx.attr.version)
    abis = [PYTHON_ABIS[abi] for abi in extension.abis]
    for abi in abis:
        args.add("--tag", "{}-{}".format(abi.python_tag, abi.abi_tag))
    args.add("--glibc_policy", ctx.attr.glibc_policy)
    oldest = sorted([tuple([int(p) for p in abi.min_python.split(".")]) for abi in abis])[0]
    args.add("--requires_python", ">={}.{}".format(*oldest))
    args.add("--summary", ctx.attr.summary)
    args.add("--description_file", ctx.file.description)
    for dest in sorted(entries):
        args.add("--file", "{}={}".format(dest, entries[dest].path))
    ctx.actions.run(
        executable = ctx.executable._builder,
        arguments = [args],
        inputs = list(entries.values()) + [ctx.file.description],
        outputs = [out_dir],
        mnemonic = "PyWheel",
        progress_message = "Building wheel %{label}",
    )
    return [
        DefaultInfo(files = depset([out_dir])),
        # The build-time report's nvcc --time files of every module (see //cuda:nvcc_time).
        OutputGroupInfo(nvcc_time = ctx.attr.extension[OutputGroupInfo].nvcc_time),
    ]

ops_wheel = rule(
    implementation = _ops_wheel_impl,
    doc = """Writes `<name>/<distribution>-<version>-<tags>.whl`.

The Python tags are those of the extension's Python ABIs (cp312-abi3, cp311-cp311). The platform
tag is computed from the extension modules (highest glibc symbol version they need) and the build
fails above glibc_policy. Equal inputs give a byte-identical wheel.""",
    attrs = {
        "srcs": attr.label_list(allow_files = True, doc = "Python package files."),
        "strip_prefix": attr.string(doc = "Leading folder of srcs that is not part of their wheel path."),
        "extension": attr.label(mandatory = True, providers = [OpsExtensionInfo]),
        "jit_sources": attr.label(
            providers = [JitSourcesInfo],
            doc = "Kernel sources for fastdeploy_ops.jit (a jit_sources target).",
        ),
        "distribution": attr.string(mandatory = True),
        "version": attr.string(mandatory = True),
        "summary": attr.string(mandatory = True),
        "description": attr.label(allow_single_file = True, mandatory = True),
        # Debian 11, Ubuntu 20.04: the sysroot of tools/buildroot/sysroot.lock.
        "glibc_policy": attr.string(default = "2.31"),
        "_builder": attr.label(
            default = "//tools/python:wheel_builder",
            executable = True,
            cfg = "exec",
        ),
    },
)
