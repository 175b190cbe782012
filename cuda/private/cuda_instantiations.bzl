"""cuda_instantiations: one generated CUDA source per instantiation group of a kernel template."""

load(":cuda_library.bzl", "current_arch")
load(":providers.bzl", "CudaInstantiationsInfo")

def _groups(axes):
    """The Cartesian product of the axes, in declaration order: a list of {axis: value} dicts."""
    groups = [{}]
    for axis, values in axes.items():
        groups = [dict(g, **{axis: v}) for g in groups for v in values]
    return groups

def _group_min_sm(ctx, group):
    """The group's lowest SM: the highest min_sm of the `axis=value` entries it matches."""
    lowest = 0
    for axis, value in group.items():
        sm = ctx.attr.min_sm.get("{}={}".format(axis, value))
        if sm != None:
            lowest = max(lowest, int(sm))
    return lowest

def _check(ctx):
    if not ctx.attr.axes:
        fail("cuda_instantiations: `axes` must name at least one axis")
    for axis, values in ctx.attr.axes.items():
        if not values or len(values) != len({v: None for v in values}):
            fail("cuda_instantiations: axis '{}' must list distinct values, got {}".format(axis, values))
        if "{" + axis + "}" not in ctx.attr.out:
            fail("cuda_instantiations: `out` must contain {%s} so every group has its own file" % axis)
    for key, sm in ctx.attr.min_sm.items():
        axis, _, value = key.partition("=")
        if value not in ctx.attr.axes.get(axis, []):
            msg = "cuda_instantiations: min_sm key '{}' names no axis value (expected 'axis=value')"
            fail(msg.format(key))
        if not sm.isdigit():
            fail("cuda_instantiations: min_sm['{}'] = '{}' is not an SM number".format(key, sm))

def _cuda_instantiations_impl(ctx):
    _check(ctx)
    arch = current_arch(ctx)
    outputs = []
    raised = {}  # short_path -> min_sm, of the files whose group has one
    for group in _groups(ctx.attr.axes):
        min_sm = _group_min_sm(ctx, group)
        if arch and arch < min_sm:
            continue
        src = ctx.actions.declare_file(ctx.attr.out.format(**group))
        substitutions = {"{{%s}}" % axis: value for axis, value in group.items()}
        substitutions["{{GROUP}}"] = ", ".join(["{}={}".format(a, v) for a, v in group.items()])
        substitutions["{{TEMPLATE}}"] = ctx.file.template.short_path
        ctx.actions.expand_template(
            template = ctx.file.template,
            output = src,
            substitutions = substitutions,
        )
        outputs.append(src)
        if min_sm:
            raised[src.short_path] = min_sm
    return [
        DefaultInfo(files = depset(outputs)),
        CudaInstantiationsInfo(
            min_sm = raised,
            group_min_sm = {k: int(v) for k, v in ctx.attr.min_sm.items()},
        ),
    ]

cuda_instantiations = rule(
    implementation = _cuda_instantiations_impl,
    doc = """Writes one `.cu` file per instantiation group of a template.

The groups are the Cartesian product of `axes` (axis name -> values). For each group the
template's `{{axis}}` placeholders become the group's values, `{{GROUP}}` a description of the
group and `{{TEMPLATE}}` the template's path, and the file is named by formatting `out` with the
group (every axis must appear in `out`). Each file is its own expand_template action, so a
cuda_library over the outputs compiles every group in its own, separately cached nvcc action:
changing one group's values recompiles that group only, and an unchanged file is never
recompiled. Values are substituted verbatim; the template maps them to C++ (types, constants).

`min_sm` raises the lowest SM of the groups holding an axis value (`{"cache=fp8": "89"}`): in a
per-SM configuration below it those groups are not generated, so the library compiles only what
the SM can run; outside the transition every group is generated, and CudaInstantiationsInfo
tells a compiler outside Bazel (fastdeploy_ops.jit) each file's lowest SM. The code that calls a
group must be compiled out on the same SMs (nvcc's `__CUDA_ARCH_LIST__` tells it which).""",
    attrs = {
        "template": attr.label(mandatory = True, allow_single_file = [".cu.in", ".in"]),
        "axes": attr.string_list_dict(mandatory = True, doc = "Axis name -> its values."),
        "out": attr.string(
            mandatory = True,
            doc = "File name pattern, e.g. `paged_attention_{dtype}_hd{head_dim}.cu`.",
        ),
        "min_sm": attr.string_dict(
            doc = "`axis=value` -> the lowest SM of the groups with that value (default: all SMs).",
        ),
        "_arch": attr.label(default = "//cuda:arch"),
    },
)
