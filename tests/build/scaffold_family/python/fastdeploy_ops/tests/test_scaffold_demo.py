"""scaled_copy on the GPU: bit-identical to the numpy reference (one float32 product each)."""

from __future__ import annotations

import numpy as np

from fastdeploy_ops import reference as ref
from fastdeploy_ops import scaffold_demo
from fastdeploy_ops.testing import TensorLib, requires_op

pytestmark = requires_op("scaled_copy")


def test_matches_the_reference(tensor_lib: TensorLib) -> None:
    x = np.random.default_rng(0).standard_normal((3, 1000)).astype(np.float32)
    out = scaffold_demo.scaled_copy(tensor_lib.to_device(x), 2.5)
    np.testing.assert_array_equal(tensor_lib.from_device(out), ref.scaled_copy(x, 2.5))
