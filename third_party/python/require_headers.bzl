"""require_headers: nothing where a header folder was found; a clear build failure where not."""

def _require_headers_impl(ctx):
    if not ctx.attr.path:
        fail(("no CPython headers for this Python ABI: set {} to their include folder, or build " +
              "only the stable-ABI modules (--//tools/python:abis=abi3)").format(ctx.attr.variable))
    return [CcInfo()]

require_headers = rule(
    implementation = _require_headers_impl,
    attrs = {
        "path": attr.string(doc = "The header folder found; empty where none was."),
        "variable": attr.string(doc = "The environment variable that names it."),
    },
)
