"""Entry point of pytest_test: runs pytest on the files given as arguments."""

import os
import sys

import pytest

if __name__ == "__main__":
    # No cache folder: runfiles are read-only, and results must not depend on earlier runs.
    args = ["-p", "no:cacheprovider", "-ra", *sys.argv[1:]]
    # Bazel's test.xml then holds per-test results (counted by .ci/run).
    if os.environ.get("XML_OUTPUT_FILE"):
        args.append("--junitxml=" + os.environ["XML_OUTPUT_FILE"])
    sys.exit(pytest.main(args))
