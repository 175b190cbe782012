"""Fixtures of the shipped suite."""

from fastdeploy_ops.testing import tensor_lib

__all__ = ["tensor_lib"]
