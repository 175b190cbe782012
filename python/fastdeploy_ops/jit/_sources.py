"""The kernel sources shipped in the wheel (``jit/sources/``) and their ``families.json``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .._manifest import check_schema

__all__ = ["FamilySources", "SourceTree", "load_sources"]

JIT_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class FamilySources:
    """One family as ``families.json`` describes it (paths relative to the sources folder)."""

    name: str
    min_sm: int
    ops: tuple[str, ...]
    sources: tuple[str, ...]
    headers: tuple[str, ...]
    nvcc_flags: tuple[str, ...]
    source_min_sm: Mapping[str, int] = field(default_factory=dict)

    def sources_for(self, sm: int) -> tuple[str, ...]:
        """The sources a library for ``sm`` compiles: those whose lowest SM allows it."""
        return tuple(s for s in self.sources if self.source_min_sm.get(s, 0) <= sm)


@dataclass(frozen=True)
class SourceTree:
    """The sources folder (also the include root), the package version, the build's -gencode
    pattern for a JIT library (``{sm}`` for the SASS target), the SMs whose SASS target is an
    architecture-specific variant (``{"90": "90a"}``: Hopper's wgmma) and the families."""

    root: Path
    package_version: str
    gencode_pattern: str
    arch_specific_sass: Mapping[str, str]
    families: Mapping[str, FamilySources]

    def gencode(self, sm: int) -> str:
        """The -gencode flag of a library for ``sm``."""
        return self.gencode_pattern.format(sm=self.arch_specific_sass.get(str(sm), str(sm)))

    def file_hashes(self, family: str) -> dict[str, str]:
        """``{relative path: sha256}`` of every source and header ``family`` compiles from.

        Raises:
            OSError: a listed file is missing or unreadable.
        """
        entry = self.families[family]
        return {
            path: hashlib.sha256((self.root / path).read_bytes()).hexdigest()
            for path in sorted({*entry.sources, *entry.headers})
        }


def load_sources(jit_dir: Path = JIT_DIR) -> SourceTree:
    """Read ``jit_dir/families.json``.

    Raises:
        FileNotFoundError: this package ships no JIT sources.
        ValueError: the description is malformed (the message names the file).
    """
    path = jit_dir / "families.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        check_schema(data)
        families = {
            name: FamilySources(
                name, int(f["min_sm"]), tuple(f["ops"]), tuple(f["sources"]),
                tuple(f["headers"]), tuple(f["nvcc_flags"]),
                {str(k): int(v) for k, v in f["source_min_sm"].items()})
            for name, f in data["families"].items()
        }
        return SourceTree(jit_dir / data["sources_dir"], str(data["package_version"]),
                          str(data["gencode"]),
                          {str(k): str(v) for k, v in data["arch_specific_sass"].items()},
                          families)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"malformed JIT source description {path}: {exc!r}") from exc
