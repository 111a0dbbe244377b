import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flzoo.paths import default_data_root

# The shared test helpers (tiny_models, data_fakes, eval_doubles, hub_server) live here, beside this conftest, which
# puts this folder on sys.path for the test modules in the subfolders; ``run_on_backend`` puts it on PYTHONPATH.
HELPERS = Path(__file__).parent


def pytest_configure(config):
    """Converted ImageNet weights and exported runtimes go to a cache of this test session, not the user's."""
    if "FLZOO_CACHE" not in os.environ:
        import tempfile

        os.environ["FLZOO_CACHE"] = config._flzoo_cache = tempfile.mkdtemp(prefix="flzoo-test-cache-")


def pytest_unconfigure(config):
    import shutil

    cache = getattr(config, "_flzoo_cache", None)
    if cache:
        shutil.rmtree(cache, ignore_errors=True)


@pytest.fixture(scope="session")
def data_root():
    """The real 300-W copy; tests that need it skip with the reason when it is absent."""
    root = default_data_root()
    if not (root / "helen" / "testset").is_dir():
        pytest.skip(f"300-W data not found at {root} (set FLZOO_300W to its folder)")
    return root


def backend_available(backend):
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[backend]
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def run_on_backend(backend, code, timeout=600):
    """Run ``code`` in a fresh interpreter with KERAS_BACKEND=backend and the helpers importable; the code must
    print one JSON line last.

    Keras fixes its backend at import, so each backend needs its own process."""
    if not backend_available(backend):
        pytest.skip(f"Keras backend {backend!r} is not installed (pip install 'flzoo[{backend}]')")
    path = os.pathsep.join(filter(None, [str(HELPERS), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=path)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env, capture_output=True, text=True, timeout=timeout,
    )
    if proc.returncode != 0:
        raise AssertionError(f"backend {backend} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def on_backend():
    return run_on_backend
