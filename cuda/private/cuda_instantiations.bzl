"""cuda_instantiations: one generated CUDA source per instantiation group of a kernel template."""

def _groups(axes):
    """The Cartesian product of the axes, in declaration order: a list of {axis: value} dicts."""
    groups = [{}]
    for axis, values in axes.items():
        groups = [dict(g, **{axis: v}) for g in groups for v in values]
    return groups

def _cuda_instantiations_impl(ctx):
    if not ctx.attr.axes:
        fail("cuda_instantiations: `axes` must name at least one axis")
    for axis, values in ctx.attr.axes.items():
        if not values or len(values) != len({v: None for v in values}):
            fail("cuda_instantiations: axis '{}' must list distinct values, got {}".format(axis, values))
        if "{" + axis + "}" not in ctx.attr.out:
            fail("cuda_instantiations: `out` must contain {%s} so every group has its own file" % axis)
    outputs = []
    for group in _groups(ctx.attr.axes):
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
    return [DefaultInfo(files = depset(outputs))]

cuda_instantiations = rule(
    implementation = _cuda_instantiations_impl,
    doc = """Writes one `.cu` file per instantiation group of a template.

The groups are the Cartesian product of `axes` (axis name -> values). For each group the
template's `{{axis}}` placeholders become the group's values, `{{GROUP}}` a description of the
group and `{{TEMPLATE}}` the template's path, and the file is named by formatting `out` with the
group (every axis must appear in `out`). Each file is its own expand_template action, so a
cuda_library over the outputs compiles every group in its own, separately cached nvcc action:
changing one group's values recompiles that group only, and an unchanged file is never
recompiled. Values are substituted verbatim; the template maps them to C++ (types, constants).""",
    attrs = {
        "template": attr.label(mandatory = True, allow_single_file = [".cu.in", ".in"]),
        "axes": attr.string_list_dict(mandatory = True, doc = "Axis name -> its values."),
        "out": attr.string(
            mandatory = True,
            doc = "File name pattern, e.g. `paged_attention_{dtype}_hd{head_dim}.cu`.",
        ),
    },
)
