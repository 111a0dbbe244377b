"""Landmarks through a video: detect once, then track each face from its previous landmarks.

``track(landmarker, frames)`` (``Landmarker.track``) yields one list of faces per frame. On the first frame the
faces are detected and predicted as ``Landmarker.predict`` does (detector box, refinement pass). On the next
frames each face is cropped from its previous landmarks with the model's crop protocol (exactly what the
refinement pass does) and predicted once: no detection. Detection runs again
- every ``detect_every`` frames, to pick up new faces (a detection that overlaps no tracked face starts one);
- on any frame where a tracked face's confidence fell below ``min_confidence`` (a cut, an occlusion, the face
  left the frame): the face is re-initialised from an overlapping detection (keeping its id) or dropped;
- on every frame while no face is tracked.
The crop of a tracked face is moved on by its last frame-to-frame motion (constant velocity). Faces keep an
``"id"`` (0, 1, ...) while they are tracked. Points are smoothed with a One-Euro filter per face
(``flzoo.smoothing``) unless ``smooth=False``; the filter restarts when a face is re-initialised.

Video files: ``read_video(path)`` (OpenCV ``VideoCapture``: RGB frames, fps, frame count) and ``VideoWriter``.
"""

from pathlib import Path

import numpy as np

from flzoo.confidence import eye_distance
from flzoo.evaluate import box_iou

DETECT_EVERY = 30  # frames between detections that look for new faces
# A tracked face below this face confidence is re-detected, and a detection whose landmarks score below it is not
# tracked (flzoo.confidence: Helen / validation faces score 0.6-0.9, 1% of successes below 0.5 with dlib boxes;
# non-faces such as a blank crop or the astronaut's mission patch 0.04-0.45).
MIN_CONFIDENCE = 0.5
SAME_FACE_IOU = 0.3  # a detection and a tracked face are the same face from this landmark-box IoU
DUPLICATE_IOU = 0.5  # two tracks this close follow one face: the less confident one is dropped
DEFAULT_FPS = 30.0  # when a video does not say


def _box(points):
    """The box ``(x0, y0, x1, y1)`` of ``(68, 2)`` points."""
    return tuple(float(v) for v in (*points.min(axis=0), *points.max(axis=0)))


class _Track:
    def __init__(self, track_id, matrix, points, confidence, point_confidence, score, filt):
        self.id, self.filter = track_id, filt
        self.update(matrix, points, confidence, point_confidence, score)

    def update(self, matrix, points, confidence, point_confidence, score=None, restart=False):
        points = np.asarray(points, np.float64)
        # the last frame-to-frame motion, for the next crop (None until two frames are tracked)
        self.velocity = None if restart or getattr(self, "points", None) is None else points - self.points
        self.matrix, self.points, self.box = matrix, points, _box(points)  # the crop the points came from
        self.confidence, self.point_confidence, self.score = float(confidence), point_confidence, score

    def crop_points(self):
        """Where the face is expected in the next frame: its points moved on by the last motion (constant
        velocity), so a moving face stays centred in its crop (measured: NME 0.0327 -> 0.0307 on the test clip,
        docs/video.md)."""
        return self.points if self.velocity is None else self.points + self.velocity


def _check_options(detect_every, min_confidence, fps):
    if isinstance(detect_every, bool) or not isinstance(detect_every, (int, np.integer)) or detect_every < 1:
        raise ValueError(f"detect_every={detect_every!r}: expected an integer >= 1 (frames)")
    if isinstance(min_confidence, bool) or not isinstance(min_confidence, (int, float)) \
            or not 0 <= min_confidence <= 1:
        raise ValueError(f"min_confidence={min_confidence!r}: expected a number in [0, 1]")
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0 or not np.isfinite(fps):
        raise ValueError(f"fps={fps!r}: expected frames per second > 0")


def track(landmarker, frames, detect_every=DETECT_EVERY, min_confidence=MIN_CONFIDENCE, smooth=True,
          min_cutoff=None, beta=None, fps=DEFAULT_FPS):
    """Yield, per frame of ``frames`` (an iterable of RGB uint8 arrays or image paths), the list of faces:
    ``{"id", "points", "box", "score", "confidence", "point_confidence"}`` (``points`` smoothed when ``smooth``;
    ``box`` the box of the points; ``score`` the detector's on the frame it detected the face, else None).
    ``fps``: the frame rate, for the filter's time step; ``min_cutoff`` / ``beta``: One-Euro parameters
    (defaults ``flzoo.smoothing.MIN_CUTOFF`` / ``BETA``)."""
    from flzoo.inference import read_image
    from flzoo.smoothing import BETA, MIN_CUTOFF, OneEuroFilter

    _check_options(detect_every, min_confidence, fps)
    if landmarker.detector is None:
        raise ValueError("track: this Landmarker has no face detector (detector=None); tracking needs one to "
                         "find the faces")
    min_cutoff = MIN_CUTOFF if min_cutoff is None else min_cutoff
    beta = BETA if beta is None else beta
    make_filter = (lambda: OneEuroFilter(min_cutoff, beta)) if smooth else (lambda: None)
    make_filter()  # checks the parameters before the first frame
    dt = 1.0 / fps
    tracks, next_id, since_detect = [], 0, None

    for index, frame in enumerate(frames):
        img = read_image(frame, f"frame {index}")
        # 1. track: one pass per face, cropped from its previous (unsmoothed) landmarks
        if tracks:
            # the refinement pass's crop; None (degenerate points, a > 3x size jump) drops the face
            matrices = [landmarker._refined_matrix(t.crop_points(), t.matrix) for t in tracks]
            tracks = [t for t, m in zip(tracks, matrices) if m is not None]
            matrices = [m for m in matrices if m is not None]
            if tracks:
                res = landmarker.predict_scored_with_matrices(img, np.asarray(matrices))
                for k, t in enumerate(tracks):
                    t.update(matrices[k], res["points"][k], res["confidence"][k], res["point_confidence"][k])
        # 2. detect: on the first frame, every detect_every frames, when a face is unsure, when none is tracked
        unsure = [t for t in tracks if t.confidence < min_confidence]
        if since_detect is None or since_detect + 1 >= detect_every or unsure or not tracks:
            since_detect = 0
            found = landmarker.detect(img)
            tracks, next_id = _merge(landmarker, img, tracks, found, min_confidence, next_id, make_filter)
        else:
            since_detect += 1
        # 3. output (smoothed)
        faces = []
        for t in tracks:
            points = t.points
            if t.filter is not None:
                points = t.filter.filter(points, dt, scale=float(eye_distance(points)))
            points = points.astype(np.float32)
            faces.append({"id": t.id, "points": points, "box": _box(points),
                          "score": t.score, "confidence": t.confidence,
                          "point_confidence": np.asarray(t.point_confidence, np.float32)})
            t.score = None  # a detector score belongs to the frame that detected the face
        yield faces


def _merge(landmarker, img, tracks, found, min_confidence, next_id, make_filter):
    """Tracks after a detection: unsure tracks overlapping a detection restart from it (keeping their id),
    other unsure tracks are dropped, detections overlapping no sure track start new ones (when their landmarks
    score at least ``min_confidence``); duplicates go."""
    sure = [t for t in tracks if t.confidence >= min_confidence]
    unsure = [t for t in tracks if t.confidence < min_confidence]
    starts = []  # (detection box, score, track to restart or None)
    for box, score in found:
        if any(box_iou(box, t.box) >= SAME_FACE_IOU for t in sure):
            continue  # already tracked well
        match = max(unsure, key=lambda t: box_iou(box, t.box), default=None)
        if match is not None and box_iou(box, match.box) >= SAME_FACE_IOU:
            unsure.remove(match)
        else:
            match = None
        starts.append((box, score, match))
    if starts:
        res = landmarker._refine_and_score([img] * len(starts), [landmarker.box_matrix(b) for b, _, _ in starts],
                                           landmarker.refine)
        for k, (box, score, match) in enumerate(starts):
            args = (res["matrices"][k], res["points"][k], res["confidence"][k], res["point_confidence"][k], score)
            if res["confidence"][k] < min_confidence:
                continue  # not a face the model can follow (a false detection): neither started nor kept
            if match is None:
                sure.append(_Track(next_id, *args, make_filter()))
                next_id += 1
            else:
                match.update(*args, restart=True)
                if match.filter is not None:
                    match.filter.reset()
                sure.append(match)
    # two tracks on one face (e.g. a restarted track drifting onto a neighbour): keep the more confident
    sure.sort(key=lambda t: -t.confidence)
    kept = []
    for t in sure:
        if all(box_iou(t.box, k.box) < DUPLICATE_IOU for k in kept):
            kept.append(t)
    kept.sort(key=lambda t: t.id)
    return kept, next_id


# ---- video files -----------------------------------------------------------------------------------------

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm")


def is_video(path):
    return Path(str(path)).suffix.lower() in VIDEO_SUFFIXES


class VideoReader:
    """RGB frames of a video file (OpenCV ``VideoCapture``); ``fps`` (``DEFAULT_FPS`` when the file gives none)
    and ``frame_count`` (None when unknown). Raises ValueError naming the file when it cannot be read."""

    def __init__(self, path):
        import cv2

        self.path = Path(path)
        if not self.path.is_file():
            raise ValueError(f"{self.path}: no such file")
        self._cap = cv2.VideoCapture(str(self.path))
        ok, first = self._cap.read() if self._cap.isOpened() else (False, None)
        if not ok or first is None:
            self._cap.release()
            raise ValueError(f"{self.path}: cannot read it as a video (OpenCV could not decode a frame); "
                             f"expected a video file such as .mp4 (H.264 / MPEG-4) or .avi")
        self._first = first
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if np.isfinite(fps) and fps > 0 else DEFAULT_FPS
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = count if count > 0 else None
        self.width, self.height = first.shape[1], first.shape[0]

    def __iter__(self):
        frame = self._first
        self._first = None
        try:
            while frame is not None:
                yield np.ascontiguousarray(frame[:, :, ::-1])  # BGR -> RGB
                ok, frame = self._cap.read()
                if not ok:
                    frame = None
        finally:
            self._cap.release()


class VideoWriter:
    """Write RGB frames to a video file (OpenCV ``VideoWriter``, MPEG-4 part 2 for .mp4, MJPG for .avi)."""

    def __init__(self, path, fps, width, height):
        import cv2

        self.path = Path(path)
        fourcc = cv2.VideoWriter_fourcc(*("MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"))
        self._writer = cv2.VideoWriter(str(self.path), fourcc, float(fps), (int(width), int(height)))
        if not self._writer.isOpened():
            raise ValueError(f"{self.path}: OpenCV cannot write a video there (expected a .mp4 or .avi path in a "
                             f"writable folder)")

    def write(self, rgb):
        self._writer.write(np.ascontiguousarray(rgb[:, :, ::-1]))

    def close(self):
        self._writer.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


__all__ = ["track", "VideoReader", "VideoWriter", "is_video", "VIDEO_SUFFIXES", "DETECT_EVERY", "MIN_CONFIDENCE"]
