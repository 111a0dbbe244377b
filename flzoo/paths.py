"""Where flzoo looks for things on disk."""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def default_data_root():
    """The 300-W copy: $FLZOO_300W, else ../shared/data/300w beside a source checkout, else ./300w (an installed
    wheel has no checkout beside it: never a folder inside site-packages). May not exist."""
    env = os.environ.get("FLZOO_300W")
    if env:
        return Path(env)
    if (REPO_ROOT / "pyproject.toml").is_file():
        return REPO_ROOT.parent / "shared" / "data" / "300w"
    return Path("300w")


def write_atomic(path, data):
    """Write ``data`` (bytes or str) to ``path`` through a temporary file beside it, so an interrupted or
    failed write never leaves a truncated file under the final name. Raises OSError."""
    path = Path(path)
    data = data.encode() if isinstance(data, str) else data
    if path.is_char_device():  # e.g. /dev/stdout: no rename possible, write through
        path.write_bytes(data)
        return
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
