"""The schema version of the JSON files the build writes into the package: every
`manifest_smNN.json` and `jit/families.json`. fastdeploy_ops._manifest.SCHEMA_VERSION is the
number the package reads; bump both together when a field changes meaning or goes away."""

SCHEMA_VERSION = 3
