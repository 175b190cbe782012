"""jit_sources: the kernel sources a wheel ships for fastdeploy_ops.jit, and their description."""

load("//cuda:defs.bzl", "ARCH_SPECIFIC_SASS", "JIT_GENCODE", "NVCC_FLAGS")
load(":providers.bzl", "FamilySourcesInfo")
load(":schema.bzl", "SCHEMA_VERSION")

JitSourcesInfo = provider(
    doc = "Files to add to a wheel: path inside the wheel -> File.",
    fields = {"files": "dict: wheel path (e.g. fastdeploy_ops/jit/families.json) -> File."},
)

def _in_main_repository(f):
    return not f.owner.workspace_name

def _jit_sources_impl(ctx):
    jit_dir = ctx.attr.package_dir + "/jit"
    files = {}
    families = {}
    for target in ctx.attr.families:
        info = target[FamilySourcesInfo]

        # Toolkit headers come from the user's nvcc; everything else is ours and ships.
        headers = [f for f in info.sources.headers.to_list() if _in_main_repository(f)]
        for f in info.sources.srcs + headers:
            path = "{}/sources/{}".format(jit_dir, f.short_path)
            if path in files:
                continue  # ops/common headers are shared by every family
            copy = ctx.actions.declare_file("_{}/sources/{}".format(ctx.label.name, f.short_path))
            ctx.actions.symlink(output = copy, target_file = f)
            files[path] = copy
        families[info.name] = {
            "min_sm": info.min_sm,
            "ops": info.ops,
            "sources": sorted([f.short_path for f in info.sources.srcs]),
            "source_min_sm": info.sources.min_sm,
            "group_min_sm": info.sources.group_min_sm,
            "headers": sorted([f.short_path for f in headers]),
            "nvcc_flags": NVCC_FLAGS + info.sources.copts,
        }
    description = ctx.actions.declare_file("_{}/families.json".format(ctx.label.name))
    ctx.actions.write(description, json.encode_indent({
        "schema_version": SCHEMA_VERSION,
        "package_version": ctx.attr.package_version,
        "gencode": JIT_GENCODE,
        "arch_specific_sass": ARCH_SPECIFIC_SASS,
        "sources_dir": "sources",
        "families": families,
    }, indent = "  ") + "\n")
    files[jit_dir + "/families.json"] = description
    return [
        DefaultInfo(files = depset(files.values())),
        JitSourcesInfo(files = files),
    ]

jit_sources = rule(
    implementation = _jit_sources_impl,
    doc = """Ships every family's kernel sources under `<package_dir>/jit/sources/` (with the
headers they include, at their repository paths, so that folder is the include root) and
`<package_dir>/jit/families.json`: the schema version, the JIT's -gencode pattern and the SMs
whose SASS targets an architecture-specific variant, and per family
its min_sm, ops, sources (and the lowest SM of those above the family's), headers and nvcc flags
(the ahead-of-time build's NVCC_FLAGS plus the family's copts).""",
    attrs = {
        "families": attr.label_list(providers = [FamilySourcesInfo]),
        "package_dir": attr.string(default = "fastdeploy_ops"),
        "package_version": attr.string(mandatory = True),
    },
)
