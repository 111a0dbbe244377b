"""Re-key a model folder written before flzoo keyed tensors by ``Variable.path`` (issue 12; runs started before
commit a8997eb, e.g. a long run that was already going). Run it with the flzoo that WROTE the file on the path,
so its ``load_model`` reads the old keys; the output has the public-path keys today's flzoo reads:

    git worktree add ../flzoo-old d86723c
    PYTHONPATH=../flzoo-old python tools/rekey_model.py RUN/best RUN/best-rekeyed

Only public API is used (``load_model``, ``Variable.path``), so it works under either version.
"""

import json
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from flzoo.weights import load_model


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    model = load_model(src)
    tensors = {v.path: np.array(v.numpy(), order="C") for v in model.weights}
    if len(tensors) != len(model.weights):
        sys.exit(f"{src}: two variables share a path; cannot re-key")
    dst.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(dst / "model.safetensors"), metadata={"format": "flzoo", "flzoo_version": "0.1.0"})
    config = json.loads((src / "config.json").read_text())
    config.setdefault("storage", {"dtype": "float32"})
    (dst / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    print(f"{src} -> {dst}: {len(tensors)} tensors keyed by Variable.path")


if __name__ == "__main__":
    main()
