"""Exceptions raised when an op cannot run here (as opposed to bad arguments).

Bad arguments raise ``TypeError`` / ``ValueError`` from the compiled bindings (or from the
small Python-side checks needed to allocate outputs); these two classes cover the cases where
the arguments do not matter: the GPU, the driver or the op itself is missing.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["DeviceUnavailableError", "OpUnavailableError"]


class DeviceUnavailableError(RuntimeError):
    """No usable GPU or extension module: no driver, no device, no matching ``_ops_smNN``.

    Attributes:
        op: the op that was called (``None`` when raised outside an op call).
        reason: why no module can run, as reported by ``fastdeploy_ops.info()``.
    """

    def __init__(self, op: str | None, reason: str) -> None:
        self.op = op
        self.reason = reason
        prefix = f"{op}: " if op else ""
        super().__init__(f"{prefix}no usable fastdeploy_ops module: {reason}")


class OpUnavailableError(RuntimeError):
    """The loaded ``_ops_smNN`` module does not contain the op's family.

    Attributes:
        op: the op that was called.
        family: the op's kernel family (for example ``"activation"``).
        required_sm: the family's minimum SM (``None`` if no module of this wheel has it).
        module_sm: the SM of the loaded module.
        device_sm: the SM of the GPU (``None`` without a GPU).
        reason: the skip reason recorded in the module's manifest, if any.
        alternatives: SMs of other modules in this wheel that contain the family.
        forced: whether the module was chosen with ``FASTDEPLOY_OPS_SM``.
        jit_problem: why ``fastdeploy_ops.jit`` could not compile the family for this GPU
            (``None`` when it was not tried).
    """

    def __init__(
        self,
        op: str,
        family: str,
        required_sm: int | None,
        module_sm: int,
        device_sm: int | None,
        reason: str | None = None,
        alternatives: Sequence[int] = (),
        forced: bool = False,
        jit_problem: str | None = None,
    ) -> None:
        self.op = op
        self.family = family
        self.required_sm = required_sm
        self.module_sm = module_sm
        self.device_sm = device_sm
        self.reason = reason
        self.alternatives = tuple(alternatives)
        self.forced = forced
        self.jit_problem = jit_problem
        super().__init__(self._message())

    def _message(self) -> str:
        device = f"SM{self.device_sm}" if self.device_sm is not None else "none"
        if self.required_sm is None:
            need = f"family '{self.family}' is in no module of this wheel"
        else:
            need = f"family '{self.family}' requires SM{self.required_sm}+"
        text = (
            f"{self.op} is not available: {need}; the loaded module _ops_sm{self.module_sm} "
            f"is built for SM{self.module_sm}; the device is {device}"
        )
        if self.reason:
            text += f" (manifest: {self.reason})"
        return f"{text}. {self._hint()}"

    def _hint(self) -> str:
        if (
            self.device_sm is not None
            and self.required_sm is not None
            and self.device_sm < self.required_sm
        ):
            return f"This GPU (SM{self.device_sm}) cannot run it."
        hints = []
        if self.forced and self.alternatives:
            others = ", ".join(str(sm) for sm in self.alternatives)
            hints.append(f"unset FASTDEPLOY_OPS_SM or set it to one of: {others}")
        if self.jit_problem is not None:
            hints.append(
                f"let fastdeploy_ops.jit compile it for this GPU (it could not: "
                f"{self.jit_problem}; it needs FASTDEPLOY_OPS_JIT unset or 1 and an nvcc from "
                f"FASTDEPLOY_OPS_NVCC, CUDA_HOME, PATH or the nvidia-cuda-nvcc package)"
            )
        target = self.device_sm if self.device_sm is not None else self.required_sm
        if target is not None:
            hints.append(f"build the wheel with --config=sm{target}")
        return f"To get it: {' or '.join(hints)}." if hints else ""
