"""The manifests of the wheel's extension modules (``manifest_smNN.json``).

Each ``_ops_smNN`` module ships with a manifest, written by the build (``ops_extension``): its
module name, SM, package version, the CUDA version it was built with and the oldest driver that
runs it, the families it contains and those it skipped,
with the reason. ``families.json`` (the JIT's kernel sources) follows the same schema version.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "PACKAGE_DIR",
    "SCHEMA_VERSION",
    "Family",
    "Manifest",
    "check_schema",
    "package_version",
    "parse_manifest",
    "read_manifests",
]

PACKAGE_DIR = Path(__file__).resolve().parent
# The layout of manifest_smNN.json and jit/families.json; the build writes the same number
# (tools/ops/schema.bzl), and a reader refuses any other.
SCHEMA_VERSION = 3
_MANIFEST_GLOB = "manifest_sm*.json"


def check_schema(data: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` unless ``data`` declares :data:`SCHEMA_VERSION`."""
    found = data.get("schema_version")
    if found != SCHEMA_VERSION:
        raise ValueError(f"schema_version {found!r}, this package reads {SCHEMA_VERSION}")


@dataclass(frozen=True)
class Family:
    """A kernel family in a manifest: its minimum SM, its ops, why it was skipped (if so), and
    the lowest SM of its instantiation groups that need more than ``min_sm`` (``{"cache=fp8":
    89}``: a module below 89 has the family without those groups)."""

    name: str
    min_sm: int
    ops: tuple[str, ...]
    reason: str | None = None
    group_min_sm: Mapping[str, int] = field(default_factory=dict)

    def required_sm(self, group: str | None = None) -> int:
        """The lowest SM that runs the family (with ``group``: that instantiation group)."""
        return max(self.min_sm, self.group_min_sm.get(group, 0) if group else 0)


@dataclass(frozen=True)
class Manifest:
    """The contents of one ``manifest_smNN.json``."""

    module: str
    sm: int
    package_version: str
    families: Mapping[str, Family]
    skipped: Mapping[str, Family]
    cuda_version: str
    cuda_min_driver: str = ""

    @property
    def ops(self) -> list[str]:
        """Sorted names of the ops this module contains."""
        return sorted(op for family in self.families.values() for op in family.ops)

    def lacks(self, family: str, group: str | None = None) -> str | None:
        """Why this module has no kernels of ``family`` (with ``group``, e.g. ``"cache=fp8"``:
        of that instantiation group), or ``None`` if it has them."""
        if family in self.skipped:
            return self.skipped[family].reason
        if family not in self.families:
            return f"no family '{family}' in {self.module}"
        required = self.families[family].required_sm(group)
        if self.sm < required:
            return f"{family} with {group} requires SM{required}+, this module is sm{self.sm}"
        return None


def _parse_family(name: str, entry: Mapping[str, Any], skipped: bool) -> Family:
    reason = str(entry["reason"]) if skipped else None
    groups = {str(k): int(v) for k, v in entry["group_min_sm"].items()}
    return Family(name, int(entry["min_sm"]), tuple(str(op) for op in entry["ops"]), reason,
                  groups)


def parse_manifest(data: Mapping[str, Any]) -> Manifest:
    """A manifest from its decoded JSON.

    Raises:
        ValueError, KeyError, TypeError: the data does not follow the schema.
    """
    check_schema(data)
    cuda_version = str(data["cuda_version"])
    if not re.fullmatch(r"\d+\.\d+(\.\d+)*", cuda_version):
        raise ValueError(f"cuda_version {cuda_version!r} is not a version such as 12.4.131")
    return Manifest(
        module=str(data["module"]),
        sm=int(data["sm"]),
        package_version=str(data["package_version"]),
        families={k: _parse_family(k, v, False) for k, v in data["families"].items()},
        skipped={k: _parse_family(k, v, True) for k, v in data.get("skipped", {}).items()},
        cuda_version=cuda_version,
        cuda_min_driver=str(data.get("cuda_min_driver", "")),
    )


def read_manifests(package_dir: Path = PACKAGE_DIR) -> dict[int, Manifest]:
    """Read every ``manifest_sm*.json`` in ``package_dir``, keyed by SM.

    Raises:
        ValueError: a manifest is unreadable or malformed (the message names the file).
    """
    manifests: dict[int, Manifest] = {}
    for path in sorted(package_dir.glob(_MANIFEST_GLOB)):
        try:
            manifest = parse_manifest(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed manifest {path}: {exc!r}") from exc
        manifests[manifest.sm] = manifest
    return manifests


def package_version() -> str:
    """The ``package_version`` the manifests agree on, or ``"0+unknown"``."""
    try:
        versions = {m.package_version for m in read_manifests().values()}
    except ValueError:
        return "0+unknown"
    return versions.pop() if len(versions) == 1 else "0+unknown"
