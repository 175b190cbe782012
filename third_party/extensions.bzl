"""Module extension creating the repositories that wrap the build's local toolchain."""

load("//third_party/cuda:cuda_toolkit_repository.bzl", "cuda_toolkit_repository")
load("//third_party/nanobind:nanobind_repository.bzl", "nanobind_repository")
load("//third_party/python:python_repository.bzl", "python_repository")

def _toolchains_impl(_module_ctx):
    cuda_toolkit_repository(name = "cuda_toolkit")
    python_repository(name = "local_python")
    nanobind_repository(name = "nanobind")

toolchains = module_extension(implementation = _toolchains_impl)
