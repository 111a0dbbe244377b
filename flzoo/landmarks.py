"""The 68-point landmark scheme (Multi-PIE / 300-W markup, 0-based indices): every fact about the points that
code needs, in one place. Plain numpy; imported by data, models, evaluation and drawing alike."""

import numpy as np

NUM_POINTS = 68

# Face parts as half-open index ranges, in markup order (drawing colours them; nothing else depends on it).
PARTS = {"jaw": (0, 17), "brows": (17, 27), "nose": (27, 36), "eyes": (36, 48), "mouth": (48, 68)}

# NME normalisation: the ground-truth distance between the outer eye corners (300-W's "inter-ocular").
OUTER_EYE_CORNERS = (36, 45)
EYE_ANCHORS = tuple(range(*PARTS["eyes"]))  # the paper's 12 eye anchors

# Left/right pairs swapped by a horizontal mirror; points on the face's axis (27..30, 33, 51, 57, 62, 66) map
# to themselves.
MIRROR_PAIRS = ([(i, 16 - i) for i in range(8)]                         # jaw 0..16
                + [(17 + i, 26 - i) for i in range(5)]                  # brows 17..21 <-> 26..22
                + [(31, 35), (32, 34)]                                  # nostrils
                + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
                + [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]    # outer lips
                + [(60, 64), (61, 63), (65, 67)])                       # inner lips


def _mirror():
    perm = list(range(NUM_POINTS))
    for a, b in MIRROR_PAIRS:
        perm[a], perm[b] = b, a
    return np.array(perm, dtype=np.int64)


# After mirroring an image, the point that was landmark MIRROR[l] is landmark l: new = old[MIRROR].
MIRROR = _mirror()

__all__ = ["NUM_POINTS", "PARTS", "OUTER_EYE_CORNERS", "EYE_ANCHORS", "MIRROR_PAIRS", "MIRROR"]
