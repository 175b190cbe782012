"""sm_objects: the objects of cuda_library targets compiled for the given SMs (test fixture)."""

load("//cuda:defs.bzl", "sm_split_transition")

def _sm_objects_impl(ctx):
    return [DefaultInfo(files = depset(transitive = [
        lib[DefaultInfo].files
        for lib in ctx.attr.libraries
    ]))]

sm_objects = rule(
    implementation = _sm_objects_impl,
    doc = "Compiles `libraries` once per SM of `sms` and nothing else (no link, no bindings).",
    attrs = {
        "libraries": attr.label_list(cfg = sm_split_transition),
        "sms": attr.string_list(mandatory = True),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
)
