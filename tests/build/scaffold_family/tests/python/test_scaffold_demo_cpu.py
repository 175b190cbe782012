"""The scaffold_demo family without a GPU: its reference, and its argument validation through
the real sm70 module."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from fastdeploy_ops import reference as ref
from fastdeploy_ops import scaffold_demo


def test_reference_scales_every_element() -> None:
    x = np.array([[1.0, -2.0], [0.5, 0.0]], dtype=np.float32)
    np.testing.assert_array_equal(ref.scaled_copy(x, 3.0), [[3.0, -6.0], [1.5, 0.0]])


@pytest.mark.usefixtures("sm70")
def test_sm70_module_rejects_a_float64_input(rejects: Callable[..., str]) -> None:
    message = rejects(TypeError, "scaled_copy", "input",
                      lambda: scaffold_demo.scaled_copy(np.zeros(4), 2.0))
    assert "float32" in message and "float64" in message
