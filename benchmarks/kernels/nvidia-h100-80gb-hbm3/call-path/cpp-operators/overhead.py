"""Prints fastdeploy_ops.bench.overhead's table and which implementation the operators have."""
import sys
import torch
import fastdeploy_ops
from fastdeploy_ops import _torch_library
from fastdeploy_ops.bench import overhead

fastdeploy_ops.register_torch_ops()
impl = getattr(_torch_library, "implementation", lambda: "Python (old wheel)")()
print(f"# {sys.argv[1]}: operators implemented by {impl}")
print(overhead.to_markdown(overhead.measure(torch)))
