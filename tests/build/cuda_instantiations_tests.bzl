"""Analysis tests of cuda_instantiations: its files, their contents, one nvcc action per group
per SM, and its failures. Analysis only: nothing is generated or compiled."""

load("@bazel_skylib//lib:unittest.bzl", "analysistest", "asserts")

_DTYPES = ["bf16", "fp16"]
_HEAD_DIMS = ["64", "128", "256"]

# The lowest SM of each cache type's groups (fp8: the e4m3 conversions).
_CACHE_MIN_SM = {"c16": 80, "int8": 80, "fp8": 89}

def _attention_groups():
    """(file name, group description, lowest SM) of every group, in the order the rule must
    declare them: the axes' Cartesian product in declaration order (dtype, cache, head_dim),
    last fastest."""
    return [
        (
            "paged_attention_{}_{}_hd{}.cu".format(dtype, cache, head_dim),
            "dtype={}, cache={}, head_dim={}".format(dtype, cache, head_dim),
            _CACHE_MIN_SM[cache],
        )
        for dtype in _DTYPES
        for cache in ["c16", "int8", "fp8"]
        for head_dim in _HEAD_DIMS
    ]

# ops_family target -> its groups (18: 12 from SM80, 6 fp8 ones from SM89).
_FAMILIES = {
    "//ops/attention": struct(groups = _attention_groups()),
}

_SMS = ["70", "80", "89", "90"]

def _basename(path):
    return path.rpartition("/")[2]

_FamilyActionsInfo = provider(
    doc = "The actions of an ops_family's kernels and of the rules generating their sources.",
    fields = {"actions": "list of Action"},
)

def _family_actions_aspect_impl(target, ctx):
    actions = list(target.actions)
    for attr in ("kernels", "srcs"):
        deps = getattr(ctx.rule.attr, attr, None) or []
        for dep in deps if type(deps) == "list" else [deps]:
            if _FamilyActionsInfo in dep:
                actions.extend(dep[_FamilyActionsInfo].actions)
    return [_FamilyActionsInfo(actions = actions)]

# From the public ops_family target down to its private cuda_library and cuda_instantiations.
_family_actions_aspect = aspect(
    implementation = _family_actions_aspect_impl,
    attr_aspects = ["kernels", "srcs"],
)

def _family_actions(env, mnemonic):
    actions = analysistest.target_under_test(env)[_FamilyActionsInfo].actions
    return [a for a in actions if a.mnemonic == mnemonic]

def _group_compiles_test_impl(ctx):
    env = analysistest.begin(ctx)
    sm = ctx.attr.sm
    compiles = _family_actions(env, "CudaCompile")
    generated = []
    for action in compiles:
        source = action.argv[action.argv.index("-c") + 1]
        if source.startswith("bazel-out/"):
            generated.append(_basename(source))
        if sm == "90":  # SASS for sm_90a (wgmma), PTX for compute_90
            flags = ["-gencode=arch=compute_90a,code=sm_90a", "-gencode=arch=compute_90,code=compute_90"]
        else:
            flags = ["-gencode=arch=compute_{0},code=[sm_{0},compute_{0}]".format(sm)]
        for flag in flags:
            asserts.true(env, flag in action.argv, "{} is not compiled with {}".format(source, flag))
    expected = [g for g, m in zip(ctx.attr.groups, ctx.attr.min_sms) if int(sm) >= m]
    asserts.equals(env, expected, generated, "generated sources compiled for sm" + sm)
    return analysistest.end(env)

def _group_compiles_test(sm):
    return analysistest.make(
        _group_compiles_test_impl,
        attrs = {
            "groups": attr.string_list(doc = "File names of the groups, in order."),
            "min_sms": attr.int_list(doc = "The lowest SM of each group."),
            "sm": attr.string(default = sm),
        },
        # A Label: as a string it would resolve in skylib, where the transition is defined.
        config_settings = {str(Label("//cuda:arch")): sm},
        extra_target_under_test_aspects = [_family_actions_aspect],
    )

# analysistest rules must be globals; one per SM, since the SM is the test's configuration.
group_compiles_sm70_test = _group_compiles_test("70")
group_compiles_sm80_test = _group_compiles_test("80")
group_compiles_sm89_test = _group_compiles_test("89")
group_compiles_sm90_test = _group_compiles_test("90")

_GROUP_COMPILES_TESTS = {
    "70": group_compiles_sm70_test,
    "80": group_compiles_sm80_test,
    "89": group_compiles_sm89_test,
    "90": group_compiles_sm90_test,
}

def _generated_files_test_impl(ctx):
    env = analysistest.begin(ctx)
    expansions = _family_actions(env, "TemplateExpand")
    files = [f.basename for a in expansions for f in a.outputs.to_list()]
    asserts.equals(env, ctx.attr.files, files, "generated files, one action each, in order")
    for action, name, group in zip(expansions, ctx.attr.files, ctx.attr.group_descriptions):
        content = action.content
        asserts.true(env, content != None, name + ": content unknown at analysis")
        if content == None:
            continue
        for line in [
            "from {}.".format(ctx.attr.template),
            "Instantiation group: {}.".format(group),
        ]:
            asserts.true(env, line in content, "{} lacks '{}':\n{}".format(name, line, content))
        asserts.false(env, "{{" in content, name + " has an unexpanded placeholder")
    return analysistest.end(env)

generated_files_test = analysistest.make(
    _generated_files_test_impl,
    attrs = {
        "files": attr.string_list(),
        "group_descriptions": attr.string_list(),
        "template": attr.string(doc = "Workspace-relative path the files must name."),
    },
    extra_target_under_test_aspects = [_family_actions_aspect],
)

def _analysis_failure_test_impl(ctx):
    env = analysistest.begin(ctx)
    asserts.expect_failure(env, ctx.attr.message)
    return analysistest.end(env)

analysis_failure_test = analysistest.make(
    _analysis_failure_test_impl,
    attrs = {"message": attr.string()},
    expect_failure = True,
)

def cuda_instantiations_tests(name):
    """The analysis tests above, over //ops/attention and the fixture's broken targets.

    Args:
      name: name of the test_suite holding them all.
    """
    tests = []
    for family, f in _FAMILIES.items():
        short = family.rpartition(":")[2] if ":" in family else family.rpartition("/")[2]
        tests.append("{}_{}_generated_files_test".format(name, short))
        generated_files_test(
            name = tests[-1],
            target_under_test = family,
            files = [file for file, _, _ in f.groups],
            group_descriptions = [group for _, group, _ in f.groups],
            template = "ops/attention/paged_attention_group.cu.in",
        )
        for sm in _SMS:
            tests.append("{}_{}_sm{}_group_compiles_test".format(name, short, sm))
            _GROUP_COMPILES_TESTS[sm](
                name = tests[-1],
                target_under_test = family,
                groups = [file for file, _, _ in f.groups],
                min_sms = [min_sm for _, _, min_sm in f.groups],
            )
    fixture = "//tests/build/instantiation_fixture:"
    for target, message in [
        ("axis_missing_from_out", "`out` must contain {width} so every group has its own file"),
        ("duplicate_values", "axis 'factor' must list distinct values, got [\"1\", \"2\", \"1\"]"),
        ("min_sm_of_unknown_value", "min_sm key 'factor=3' names no axis value (expected 'axis=value')"),
    ]:
        tests.append("{}_{}_test".format(name, target))
        analysis_failure_test(
            name = tests[-1],
            target_under_test = fixture + target,
            message = "cuda_instantiations: " + message,
        )
    native.test_suite(name = name, tests = tests)
