"""What confidence costs: one face (the astronaut, a fixed crop), points only vs points + confidence.

    python tools/confidence_cost.py [MODEL ...] [--repeats 100]

``predict_with_matrices`` (one network pass: points only, as before confidence existed) against
``predict_scored_with_matrices`` (the same pass, which for map variants also gives the point confidences, plus
the mirrored pass of the flip term) and the whole ``predict`` with a given box (crop, refinement, confidence).
Median ms over ``--repeats`` calls, in the runtime ``flzoo.load`` picks.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BOX = (176, 85, 264, 172)


def median_ms(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def main():
    import flzoo
    from skimage import data

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", default=["hybrid_disc.lite", "cascaded"])
    ap.add_argument("--repeats", type=int, default=100)
    args = ap.parse_args()
    image = data.astronaut()
    print("| model | runtime | points only (1 pass) | points + confidence | whole predict, given box |")
    print("|---|---|---|---|---|")
    for name in args.models:
        lm = flzoo.load(name, detector=None, flip=False)  # "points only" is one pass
        m = lm.box_matrix(BOX)[None]
        plain = median_ms(lambda: lm.predict_with_matrices(image, m), args.repeats)
        scored = median_ms(lambda: lm.predict_scored_with_matrices(image, m), args.repeats)
        whole = median_ms(lambda: lm.predict(image, boxes=[BOX]), args.repeats)
        print(f"| {name} | {lm.runtime} | {plain:.2f} ms | {scored:.2f} ms | {whole:.2f} ms |", flush=True)


if __name__ == "__main__":
    main()
