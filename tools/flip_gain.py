"""Test-time flip's gain on the VALIDATION faces (the training split's held-out 10%, seed 0, as in training),
from ground-truth crops, so the choice of the default is not made on a test set.

    python tools/flip_gain.py [MODEL ...] [--data PATH]
"""

import argparse
from pathlib import Path


def main():
    import flzoo
    from flzoo.data.datasets import discover, validation_faces
    from flzoo.evaluate import evaluate_faces
    from flzoo.paths import default_data_root

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", default=["hybrid_disc.mnv2", "hybrid.mnv2", "pwc.mnv2"])
    ap.add_argument("--data", type=Path, default=None)
    args = ap.parse_args()
    found = discover(args.data or default_data_root())
    val = validation_faces(found)
    print("| model | validation faces | NME, no flip | NME, flip | change |\n|---|---|---|---|---|")
    for name in args.models:
        nme = [evaluate_faces(flzoo.load(name, flip=flip, detector=None), {"val": val}, boxes="gt",
                              progress=False)["summary"]["val"]["nme"] for flip in (False, True)]
        print(f"| {name} | {len(val)} | {nme[0]:.4f} | {nme[1]:.4f} | {100 * (nme[1] / nme[0] - 1):+.1f}% |",
              flush=True)


if __name__ == "__main__":
    main()
