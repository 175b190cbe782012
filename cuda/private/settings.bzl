"""Build settings that select the GPU architectures of a build."""

load("@bazel_skylib//rules:common_settings.bzl", "BuildSettingInfo")

def _sm_list_flag_impl(ctx):
    sms = ctx.build_setting_value
    for sm in sms:
        if not sm.isdigit() or len(sm) < 2:
            fail("--{}: '{}' is not an SM version such as 70 or 90".format(ctx.label, sm))
    return [BuildSettingInfo(value = sms)]

sm_list_flag = rule(
    implementation = _sm_list_flag_impl,
    build_setting = config.string_list(flag = True, repeatable = True),
    doc = "SM versions to build, one per --config=smNN (repeatable, so configs combine).",
)

def _transition_setting_impl(ctx):
    return [BuildSettingInfo(value = ctx.build_setting_value)]

transition_setting = rule(
    implementation = _transition_setting_impl,
    build_setting = config.string(flag = False),
    doc = "A string that only the per-SM split transition sets (the SM, the toolkit).",
)
