"""The package finds its family modules and references itself: nothing lists them by hand.

A family module is a public module of the package with a line ``FAMILY = "<its name>"``; it is
imported on first access. ``reference.<name>`` is looked up in the ``__all__`` of the family
reference modules, which must not collide.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

import pytest

import fastdeploy_ops
from fastdeploy_ops import _manifest
from fastdeploy_ops import reference as ref

API = {"DeviceUnavailableError", "Info", "OpUnavailableError", "__version__", "available_ops",
       "register_torch_ops",
       "info"}

LAZY = """
import json, sys
import fastdeploy_ops
before = sorted(m for m in sys.modules if m.startswith("fastdeploy_ops."))
op = fastdeploy_ops.rotary.fused_rotary_position_encoding
after = sorted(m for m in sys.modules if m.startswith("fastdeploy_ops."))
print(json.dumps({"all": fastdeploy_ops.__all__, "dir": dir(fastdeploy_ops), "before": before,
                  "after": after, "op": op.__module__ + "." + op.__name__}))
"""


def family_modules() -> list[str]:
    return sorted(set(fastdeploy_ops.__all__) - API)


def test_all_is_the_api_and_the_family_modules() -> None:
    assert API <= set(fastdeploy_ops.__all__)
    assert fastdeploy_ops.__all__ == sorted(fastdeploy_ops.__all__)
    for name in family_modules():
        module = getattr(fastdeploy_ops, name)
        assert module.__name__ == f"fastdeploy_ops.{name}" and module.FAMILY == name


def test_family_modules_are_imported_on_first_access(run_python) -> None:
    out = run_python(LAZY)
    assert out["op"] == "fastdeploy_ops.rotary.fused_rotary_position_encoding"
    families = [f"fastdeploy_ops.{name}" for name in family_modules()]
    assert not set(families) & set(out["before"])
    assert set(out["after"]) - set(out["before"]) >= {"fastdeploy_ops.rotary"}
    assert not (set(families) - {"fastdeploy_ops.rotary"}) & set(out["after"])
    assert out["all"] == fastdeploy_ops.__all__
    assert set(out["dir"]) >= set(out["all"]) | {"reference", "testing", "jit", "bench"}


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'no_such_family'"):
        fastdeploy_ops.no_such_family  # noqa: B018


def test_every_declared_family_is_served_by_a_family_module(compiled_modules: Path) -> None:
    """Each family module's FAMILY is declared, and every declared family is some family
    module's FAMILY."""
    declared = set()
    for manifest in _manifest.read_manifests(compiled_modules).values():
        declared |= set(manifest.families) | set(manifest.skipped)
    named = set()
    for name in family_modules():
        module = getattr(fastdeploy_ops, name)
        assert module.FAMILY in declared, name
        named.add(module.FAMILY)
    assert declared <= named, declared - named


def reference_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(ref.__path__) if not m.name.startswith("_"))


def test_reference_names_are_unique_across_families() -> None:
    owners: dict[str, str] = {}
    for module_name in reference_modules():
        module = importlib.import_module(f"fastdeploy_ops.reference.{module_name}")
        for name in module.__all__:
            assert name not in owners, f"{name} is public in {owners[name]} and {module_name}"
            assert name not in reference_modules(), f"{name} of {module_name} is a module name"
            assert getattr(ref, name) is getattr(module, name)
            owners[name] = module_name
    assert ref.__all__ == sorted(owners)


def test_reference_lookup_names_what_it_searched() -> None:
    with pytest.raises(AttributeError) as raised:
        ref.no_such_reference  # noqa: B018
    message = str(raised.value)
    assert "'no_such_reference'" in message
    for module_name in reference_modules():
        assert module_name in message
    assert "_numerics" not in reference_modules()


def test_reference_modules_are_attributes() -> None:
    assert ref.quantization is sys.modules["fastdeploy_ops.reference.quantization"]
    from fastdeploy_ops.reference import paged_attention

    assert paged_attention is ref.attention.paged_attention
