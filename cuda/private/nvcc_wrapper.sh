#!/bin/sh
# Runs nvcc for a CudaCompile action: "$1" is nvcc, the rest its arguments.
# The prefix map keeps the sandbox's absolute path out of the object files.
nvcc="$1"
shift
exec "${nvcc}" "-Xcompiler=-ffile-prefix-map=${PWD}=." "$@"
