"""Module extension creating the repositories that wrap the build's local toolchain."""

load("//third_party/cuda:cuda13_wheels.bzl", "CUDA13_VERSION", "CUDA13_WHEELS")
load("//third_party/cuda:cuda_toolkit_repository.bzl", "cuda_toolkit_repository")
load("//third_party/cuda:cuda_wheels_repository.bzl", "cuda_wheels_repository")
load("//third_party/nanobind:nanobind_repository.bzl", "nanobind_repository")
load("//third_party/python:python_repository.bzl", "python_repository")
load("//third_party/torch:torch_repository.bzl", "torch_repository")

def _toolchains_impl(_module_ctx):
    cuda_toolkit_repository(name = "cuda_toolkit")
    cuda_wheels_repository(
        name = "cuda_toolkit_13",
        wheels = CUDA13_WHEELS,
        version = CUDA13_VERSION,
    )
    python_repository(name = "local_python")
    nanobind_repository(name = "nanobind")
    torch_repository(name = "torch")

toolchains = module_extension(implementation = _toolchains_impl)
