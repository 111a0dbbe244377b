"""Where flzoo looks for things on disk."""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def default_data_root():
    """The 300-W copy: $FLZOO_300W, else ../shared/data/300w beside the checkout. May not exist."""
    env = os.environ.get("FLZOO_300W")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data" / "300w"
