"""Installs the wheel built for these tests into a private site folder before any test runs.

The CPU tests exercise the package exactly as users get it: `pip install` of the wheel (with
its sm70 and sm80 modules), then `import fastdeploy_ops`, with no GPU on the machine.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile
from collections.abc import Callable

import pytest


def _wheel() -> pathlib.Path:
    wheel_dir = pathlib.Path(os.environ["FASTDEPLOY_OPS_WHEEL_DIR"])
    wheels = sorted(wheel_dir.glob("*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one wheel in {wheel_dir}, found {wheels}")
    return wheels[0]


def pytest_configure(config) -> None:
    if "FASTDEPLOY_OPS_WHEEL_DIR" not in os.environ:
        return  # outside Bazel: test the sources on sys.path (PYTHONPATH=python)
    site = pathlib.Path(tempfile.mkdtemp(prefix="site-", dir=os.environ.get("TEST_TMPDIR")))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--disable-pip-version-check", "--target", str(site), str(_wheel())],
        check=True,
    )
    sys.path.insert(0, str(site))
    # Subprocesses started by tests (forced-SM imports) see the same installation.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    os.environ["FASTDEPLOY_OPS_WHEEL"] = str(_wheel())
    os.environ["FASTDEPLOY_OPS_REQUIRE_MODULES"] = "1"


# Fixtures shared by the test files.

REQUIRED_SMS = (70, 80)


@pytest.fixture(scope="session")
def compiled_modules() -> pathlib.Path:
    """The package directory, holding the compiled modules and manifests of ``REQUIRED_SMS``.

    Skips when they are not built next to the package, unless
    ``FASTDEPLOY_OPS_REQUIRE_MODULES=1`` (set above for the Bazel tests) makes that a failure.
    """
    import fastdeploy_ops  # not at module level: pytest_configure puts the wheel on sys.path first

    package_dir = pathlib.Path(fastdeploy_ops.__file__).resolve().parent
    patterns = [p for sm in REQUIRED_SMS for p in (f"manifest_sm{sm}.json", f"_ops_sm{sm}.*so")]
    missing = [p for p in patterns if not any(package_dir.glob(p))]
    if missing:
        message = f"compiled modules not built: {', '.join(missing)} missing in {package_dir}"
        if os.environ.get("FASTDEPLOY_OPS_REQUIRE_MODULES") == "1":
            pytest.fail(message + " (FASTDEPLOY_OPS_REQUIRE_MODULES=1)")
        pytest.skip(message + "; set FASTDEPLOY_OPS_REQUIRE_MODULES=1 to fail instead")
    return package_dir


@pytest.fixture
def run_python() -> Callable[..., dict]:
    """Run Python code in a fresh interpreter with no visible GPU; return the JSON it prints last.

    Keyword arguments set environment variables (``None`` removes one); ``FASTDEPLOY_OPS_SM``
    is unset unless given. The child sees this process's ``sys.path`` and
    ``CUDA_VISIBLE_DEVICES=""``, so it has no GPU even on a GPU machine.
    """

    def run(code: str, **env: str | None) -> dict:
        child_env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), CUDA_VISIBLE_DEVICES="")
        child_env.pop("FASTDEPLOY_OPS_SM", None)
        for key, value in env.items():
            if value is None:
                child_env.pop(key, None)
            else:
                child_env[key] = value
        done = subprocess.run([sys.executable, "-c", code], env=child_env, capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0, f"child failed:\n{done.stdout}\n{done.stderr}"
        return json.loads(done.stdout.strip().splitlines()[-1])

    return run


@pytest.fixture
def run_checks_with() -> Callable[..., None]:
    """``run_checks_with(python, checks, extra_env=None)``: run the pytest file ``checks`` with
    another of the build root's interpreters (its own virtual environment: Paddle's, torch's)
    against the installed wheel, with the sm80 module forced so that the bindings load without a
    GPU, and the variables of ``extra_env`` set.

    Only the wheel's folder is on the child's path, so this process's packages (another Python
    version) cannot reach it; the child must pass every check and skip none.
    """

    def run(python: str, checks: pathlib.Path, extra_env: dict[str, str] | None = None) -> None:
        import fastdeploy_ops  # the installed wheel (pytest_configure), not the sources

        site = pathlib.Path(fastdeploy_ops.__file__).resolve().parent.parent
        scratch = os.environ.get("TEST_TMPDIR", "/tmp")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": scratch,
            "TMPDIR": scratch,
            "PYTHONPATH": str(site),
            "PYTHONDONTWRITEBYTECODE": "1",
            "FASTDEPLOY_OPS_SM": "80",
            "CUDA_VISIBLE_DEVICES": "",
            **(extra_env or {}),
        }
        folder = str(checks.parent)
        result = subprocess.run(
            [python, "-W", "ignore::UserWarning", "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "--rootdir", folder, "--confcutdir", folder, str(checks)],
            env=env, capture_output=True, text=True, timeout=900, check=False,
        )
        report = result.stdout[-12000:] + result.stderr[-4000:]
        assert result.returncode == 0, report
        assert " passed" in result.stdout and "skipped" not in result.stdout, report

    return run


def _forced_module(sm: int):
    @pytest.fixture
    def fixture(monkeypatch: pytest.MonkeyPatch, compiled_modules: object):
        """The package as if FASTDEPLOY_OPS_SM were set and no GPU were visible."""
        from fastdeploy_ops import _device, _loader, _selection

        monkeypatch.setenv(_selection.ENV_FORCE_SM, str(sm))
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
        caches = (_device.probe, _selection.selection, _loader.load_module, _loader.get_op,
                  _loader._jit_load)
        for cache in caches:
            cache.cache_clear()
        yield
        for cache in caches:
            cache.cache_clear()

    return fixture


sm70 = _forced_module(70)
sm80 = _forced_module(80)


@pytest.fixture
def rejects() -> Callable[..., str]:
    """``rejects(error, op, arg, call)``: ``call()`` raises ``error`` naming ``op`` and ``arg``.

    The message must start with the bindings' own "<op>: argument '<arg>' ": nanobind's generic
    "incompatible function arguments" lists every name and must not pass. Returns the message.
    """

    def check(error: type[Exception], op: str, arg: str, call: Callable[[], object]) -> str:
        with pytest.raises(error) as raised:
            call()
        message = str(raised.value)
        assert message.startswith(f"{op}: argument '{arg}' "), message
        return message

    return check
