"""Providers of the project's kernel-family rules."""

FamilyInfo = provider(
    doc = "A kernel family as built in one per-SM configuration.",
    fields = {
        "name": "Family name, also the suffix of its registration function register_<name>().",
        "min_sm": "Lowest SM the family runs on.",
        "ops": "Names of the ops the family's binding registers.",
        "arch": "The SM of this configuration, as an int (0 when built outside the transition).",
        "skipped_reason": "Why the family is absent from this SM's module, or None if it is present.",
        "group_min_sm": "dict: `axis=value` of instantiation groups above min_sm -> their lowest SM.",
        "kernels": "CcInfo of the family's device code for this SM (empty when skipped).",
        "toolkit": "CudaToolkitInfo of the toolkit this SM is built with.",
        "toolkit_setting": "The //cuda:toolkit value of this configuration (\"\" or \"13\").",
        "nvcc_time": "depset of the kernels' nvcc --time CSV files (empty unless --//cuda:nvcc_time).",
    },
)

FamilyBindingInfo = provider(
    doc = "The SM-independent host side of a kernel family: its nanobind binding.",
    fields = {
        "name": "Family name.",
        "cc_info": "CcInfo of the binding library.",
    },
)

FamilySourcesInfo = provider(
    doc = "A kernel family's sources, as fastdeploy_ops.jit compiles them at run time.",
    fields = {
        "name": "Family name.",
        "min_sm": "Lowest SM the family runs on.",
        "ops": "Names of the family's ops.",
        "sources": "CudaSourcesInfo of the family's kernels.",
    },
)
