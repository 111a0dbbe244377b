"""Face detection, pluggable.

A detector is any callable ``image (H, W, 3) RGB uint8 -> list of (box, score)`` (or of bare boxes), a box
being ``(x0, y0, x1, y1)`` photo pixels that approximates the face's LANDMARK box (the box of the 68 points,
the box the training crop protocol starts from). ``score`` may be None.

The default, ``DlibDetector``, is dlib's HOG + linear SVM frontal face detector: it comes inside the
``dlib-bin`` wheel (no model file to download at run time), runs in 20-90 ms on a 512 px photo on one CPU core,
and found 93% of 600 300-W training faces here at flzoo's threshold 0.2 (96% at dlib's 0.0;
``tools/calibrate_detector.py``). dlib's box is not the landmark box (it sits higher: brows but not the
chin), so its boxes are mapped with a fixed offset and scale measured on 300-W training faces; the refinement
pass in ``flzoo.inference`` then re-crops from the predicted points anyway.
"""

import numpy as np

# Landmark box from a dlib box of width w: centre shifted by (DX, DY) * w, side SIDE * w (median over the
# first 600 Helen-train and AFW faces with score >= 0, tools/calibrate_detector.py).
DLIB_DX, DLIB_DY, DLIB_SIDE = -0.002, 0.086, 0.968


class DlibDetector:
    """dlib's HOG frontal face detector, returning landmark-box estimates and SVM scores.

    ``upsample``: how many times dlib doubles the image first (1 finds faces down to ~40 px).
    ``threshold``: minimum SVM score (dlib's own default is 0; 0.2 drops weak false positives such as the
    mission patch on the astronaut photo, at a cost of a few percent of 300-W faces, see docs/inference.md).
    ``max_side``: larger photos are shrunk to this longest side for detection only (HOG cost grows with the
    pixel count: an 8000 x 8000 photo would need minutes and gigabytes)."""

    def __init__(self, upsample=1, threshold=0.2, max_side=1600):
        import dlib

        self.upsample, self.threshold, self.max_side = int(upsample), float(threshold), int(max_side)
        self._detector = dlib.get_frontal_face_detector()

    def __call__(self, image):
        import cv2

        image = np.asarray(image)
        h, w = image.shape[:2]
        k = min(1.0, self.max_side / max(h, w))
        small = image if k == 1.0 else cv2.resize(image, (max(1, round(w * k)), max(1, round(h * k))),
                                                  interpolation=cv2.INTER_AREA)
        rects, scores, _ = self._detector.run(np.ascontiguousarray(small), self.upsample, self.threshold)
        faces = []
        for rect, score in sorted(zip(rects, scores), key=lambda rs: -rs[1]):
            # dlib boxes are inclusive pixel indices; back to the full photo's pixel-centre frame
            x0, y0, x1, y1 = ((v + 0.5) / k - 0.5 for v in (rect.left(), rect.top(), rect.right(), rect.bottom()))
            faces.append((dlib_to_landmark_box((x0, y0, x1, y1)), float(score)))
        return faces

    def __repr__(self):
        return f"DlibDetector(upsample={self.upsample}, threshold={self.threshold}, max_side={self.max_side})"


def dlib_to_landmark_box(box):
    """Map a dlib face box ``(x0, y0, x1, y1)`` to an estimate of the landmark box."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0)
    cx = (x0 + x1) / 2 + DLIB_DX * side
    cy = (y0 + y1) / 2 + DLIB_DY * side
    half = DLIB_SIDE * side / 2
    return (cx - half, cy - half, cx + half, cy + half)


# A landmark box smaller than this (px) holds no face a 68-point model can read; one larger than this many
# times the photo's longer side is a unit or coordinate mistake.
MIN_BOX_SIDE, MAX_BOX_TO_PHOTO = 4.0, 4.0


def check_box(box, where="box", image_shape=None):
    """A box as a tuple of 4 floats with x1 > x0 and y1 > y0, or a ValueError naming ``where``.

    With ``image_shape`` (H, W, ...) the box must also overlap the photo (partly outside is fine: the crop
    pads), be at least ``MIN_BOX_SIDE`` px and at most ``MAX_BOX_TO_PHOTO`` times the photo's longer side."""
    try:
        values = tuple(float(v) for v in np.asarray(box, dtype=np.float64).reshape(-1))
    except (TypeError, ValueError):
        raise ValueError(f"{where}: expected (x0, y0, x1, y1) numbers, got {box!r}") from None
    if len(values) != 4 or not all(np.isfinite(values)):
        raise ValueError(f"{where}: expected 4 finite numbers (x0, y0, x1, y1), got {box!r}")
    if not (values[2] > values[0] and values[3] > values[1]):
        raise ValueError(f"{where}: expected x1 > x0 and y1 > y0, got {box!r}")
    if image_shape is not None:
        h, w = image_shape[:2]
        x0, y0, x1, y1 = values
        side = max(x1 - x0, y1 - y0)
        if x1 < 0 or y1 < 0 or x0 > w - 1 or y0 > h - 1:
            raise ValueError(f"{where}: box {_fmt(values)} does not overlap the {w}x{h} photo")
        if side < MIN_BOX_SIDE:
            raise ValueError(f"{where}: box {_fmt(values)} is {side:.3g} px, below the {MIN_BOX_SIDE:g} px a face "
                             f"needs")
        if side > MAX_BOX_TO_PHOTO * max(h, w):
            raise ValueError(f"{where}: box {_fmt(values)} is {side:.3g} px, more than {MAX_BOX_TO_PHOTO:g} x the "
                             f"{w}x{h} photo")
    return values


def _fmt(values):
    return "(" + ", ".join(f"{v:.6g}" for v in values) + ")"


def normalise_detections(found, where="detector", image_shape=None):
    """A detector's output as a list of ``(box, score or None)``: each item a box, ``(box, score)`` or
    ``{"box": box, "score": score}``; anything else is a ValueError naming the item."""
    if found is None:
        return []
    if isinstance(found, (dict, str, bytes)) or not hasattr(found, "__iter__"):
        raise ValueError(f"{where}: returned {found!r}; expected a list of boxes (x0, y0, x1, y1), "
                         f"(box, score) pairs or {{'box': ..., 'score': ...}} dicts")
    out = []
    for i, item in enumerate(found):
        if isinstance(item, dict):
            box, score = item.get("box"), item.get("score")
        elif isinstance(item, (tuple, list)) and len(item) == 2 and np.size(item[0]) == 4:
            box, score = item
        else:
            box, score = item, None
        out.append((check_box(box, f"{where} result {i}", image_shape), _score(score, f"{where} result {i}")))
    return out


def _score(score, where):
    if score is None:
        return None
    try:
        value = float(score)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: score {score!r} is not a number") from None
    if not np.isfinite(value):
        raise ValueError(f"{where}: score {score!r} is not finite")
    return value


def get_detector(spec="dlib"):
    """A detector from a spec: ``"dlib"`` (default), ``None``/``"none"`` (no detector: callers must pass boxes),
    or any callable ``image -> boxes``."""
    if callable(spec):
        return spec
    if spec is None or spec == "none":
        return None
    if spec == "dlib":
        return DlibDetector()
    raise ValueError(f"detector={spec!r}: expected 'dlib', 'none' or a callable image -> boxes")


__all__ = ["DlibDetector", "dlib_to_landmark_box", "check_box", "normalise_detections", "get_detector"]
