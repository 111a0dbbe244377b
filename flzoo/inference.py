"""One-line inference: detect faces -> crop -> predict -> map the points back to the photo.

``Landmarker.predict_with_matrices`` is the one place where predictions return from the crop to the photo.
``Landmarker.predict`` adds detection (or user boxes) and the refinement pass: the first crop comes from a face
box, which is not what the model was trained on, so each face is cropped again from its predicted landmarks
with the training crop protocol (``flzoo.data.crop.CropProtocol``) and predicted once more.
"""

from pathlib import Path

import numpy as np

from flzoo.detect import DEFAULT_DETECTOR
from flzoo.landmarks import MIRROR, NUM_POINTS

# A refined crop whose side differs from the first one by more than this factor means the first pass failed
# (no face in the box, or an untrained model): the first-pass points are kept rather than chasing noise.
MAX_REFINE_CHANGE = 3.0


def read_image(image, where=None):
    """An RGB uint8 ``(H, W, 3)`` array from a path or an array (grey, grey + 1 channel and RGBA accepted).

    Paths are decoded by the data layer's reader (``flzoo.data.datasets.read_image``), the one image reader for
    files. Raises ValueError naming the file or the array's dtype/shape when it cannot be used."""
    if isinstance(image, (str, Path)):
        from flzoo.data.datasets import read_image as read_image_file

        text = str(image)
        if "://" in text:
            raise ValueError(f"{text}: a URL; flzoo reads local image files and arrays only (download it first)")
        if Path(image).is_dir():
            raise ValueError(f"{image}: is a folder; expected an image file (pass the photos in it one by one, "
                             f"e.g. {Path(image) / '*.jpg'})")
        return np.ascontiguousarray(read_image_file(image))
    where = where or "image"
    if image is None or isinstance(image, (bytes, bytearray)):
        raise ValueError(f"{where}: got {type(image).__name__}; expected an RGB uint8 array or an image file path "
                         f"(for encoded bytes: cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))")
    arr = np.asarray(image)
    if arr.dtype == np.uint16:
        raise ValueError(f"{where}: a 16-bit image (dtype uint16); expected 8-bit RGB: convert with "
                         f"(x >> 8).astype('uint8')")
    if arr.dtype != np.uint8:
        raise ValueError(f"{where}: expected an RGB uint8 array or a path, got dtype {arr.dtype} "
                         f"(convert with (x * 255).clip(0, 255).astype('uint8') for 0..1 floats)")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]  # RGBA: drop alpha
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"{where}: expected an image (H, W, 3) RGB, (H, W) grey or (H, W, 4) RGBA, "
                         f"got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{where}: empty image of shape {arr.shape}")
    return np.ascontiguousarray(arr)


def resolve_folder(name_or_path):
    """A local model folder from a registry name (``hybrid_disc.lite``, a bare variant name for its best model,
    None for the default), a folder path or ``hf://ORG/NAME[@REVISION]``."""
    from flzoo import registry

    if name_or_path is None:
        return registry.resolve(None)
    spec = str(name_or_path)
    if spec.startswith("hf://"):
        from flzoo import hub  # lazy: huggingface_hub is only needed for hf:// addresses

        return Path(hub.download(spec))  # parses and validates the URI (hub.parse_hf_uri): HubError otherwise
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ValueError(f"{path}: expected a model folder (config.json + model.safetensors), got a file")
        return path
    return registry.resolve(spec)  # a registry name, or ValueError naming the known ones


def load(name_or_path=None, detector=DEFAULT_DETECTOR, refine=True, batch_size=32, flip=True, runtime="auto",
         threads=None):
    """Load a model (registry name, folder or ``hf://ORG/NAME[@REV]``; default: the registry's default model)
    and return a ``Landmarker``. ``detector``: a name of ``flzoo.detect.DETECTORS`` (``"blazeface"``,
    ``"blazeface_full"``, ``"dlib"``; default ``flzoo.detect.DEFAULT_DETECTOR``), ``None`` (boxes must be
    given) or a callable;
    ``flip``: test-time flip (default; average with the mirrored final crop's prediction, the pass the face
    confidence makes anyway; ``False``: the network alone, as the recorded figures are measured);
    ``runtime``: ``"auto"`` (the fastest installed runtime verified for this model: LiteRT, ONNX Runtime, else
    Keras), ``"keras"``, ``"litert"`` or ``"onnx"`` (``flzoo.export.runtime_model``); ``threads``: CPU threads
    of that runtime (default ``min(4, CPUs)``)."""
    from flzoo.export import runtime_model
    from flzoo.registry import canonical_name, is_name
    from flzoo.weights import load_model

    spec = name_or_path
    if spec is None or (isinstance(spec, str) and is_name(spec) and not Path(spec).exists()):
        spec = canonical_name(spec)  # the Landmarker is named after the entry it loaded: hybrid_disc.lite
    folder = resolve_folder(spec)
    model = load_model(folder)
    model = runtime_model(model, folder, runtime, threads=threads)
    return Landmarker(model, detector=detector, refine=refine, batch_size=batch_size, name=str(spec), flip=flip)


class Landmarker:
    """A ``LandmarkModel`` with a face detector: photos in, 68 points per face out (photo pixels).

    ``refine``: ``True``/``1`` = one re-crop pass from the predicted points (default), ``0``/``False`` = none,
    ``n`` = n passes. ``crop``: ``{"scale", "centre"}`` overriding the crop protocol (``self.crop``, a
    ``flzoo.data.crop.CropProtocol``: the model's ``config.json`` field ``crop``, else the training defaults).
    ``flip`` (default): also predict the mirrored final crop and average the two (points relabelled with
    ``MIRROR``); ``predict`` makes that pass anyway for the face confidence."""

    def __init__(self, model, detector=DEFAULT_DETECTOR, refine=True, batch_size=32, name=None, crop=None, flip=True):
        from flzoo.detect import get_detector

        self.model = model
        self.input_size = int(model.input_size)
        self.detector = get_detector(detector)
        if not isinstance(refine, (bool, int, np.integer)) or refine < 0:
            raise ValueError(f"refine={refine!r}: expected True/False or a number of passes >= 0")
        self.refine = int(refine)
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r}: expected an integer >= 1")
        self.batch_size = int(batch_size)
        if not isinstance(flip, bool):
            raise ValueError(f"flip={flip!r}: expected True or False")
        self.flip = flip
        self.name = name or getattr(model, "name", "model")
        from flzoo.data.crop import CropProtocol

        cfg = getattr(model, "flzoo_config", None) or {}
        self.crop = CropProtocol().updated(cfg.get("crop"), "the model's config.json: field 'crop'").updated(
            crop, "crop")

    @property
    def runtime(self):
        """``"keras"``, or the exported runtime the model runs in (``flzoo.export.ExportedModel``)."""
        return getattr(self.model, "runtime", "keras")

    def __repr__(self):
        return (f"Landmarker({self.name!r}, input_size={self.input_size}, detector={self.detector!r}, "
                f"refine={self.refine}, flip={self.flip}, runtime={self.runtime!r})")

    # ---- the frame change ---------------------------------------------------------------------------------

    def predict_with_matrices(self, images, matrices):
        """Crop ``images[i]`` through the photo -> crop ``matrices[i]`` (2x3), predict all crops in batches and
        return ``(N, 68, 2)`` float32 photo coordinates."""
        matrices = self._check_matrices(images, matrices)
        if len(matrices) == 0:
            return np.zeros((0, NUM_POINTS, 2), np.float32)
        points, _, _ = self._network(self._crops(images, matrices))
        return self._to_photo(matrices, points)

    def predict_scored_with_matrices(self, images, matrices, details=False):
        """As ``predict_with_matrices``, with confidences: ``{"points": (N, 68, 2) photo pixels,
        "point_confidence": (N, 68), "confidence": (N,)}`` (``flzoo.confidence``; the face confidence needs a
        mirrored pass, made here unless ``flip`` made it already). ``details=True`` adds the face-score
        candidates ``"flip_disagreement"`` (N, 68) and ``"shape_probability"`` (D, +disc models that carry their discriminator)."""
        matrices = self._check_matrices(images, matrices)
        crops = self._crops(images, matrices) if len(matrices) else None
        points, conf, disagreement = self._network(crops) if len(matrices) else (np.zeros((0, NUM_POINTS, 2)),
                                                                                 None, None)
        out = self._score(crops, points, conf, disagreement, details)
        out["points"] = self._to_photo(matrices, points)
        return out

    # the pieces of a pass: crop, network (+ mirrored pass), scores, back to the photo

    @staticmethod
    def _check_matrices(images, matrices):
        matrices = np.asarray(matrices, dtype=np.float64)
        if matrices.ndim == 1 and matrices.size == 0:
            matrices = matrices.reshape(0, 2, 3)
        n_images = len(matrices) if isinstance(images, np.ndarray) and images.ndim == 3 else len(images)
        if matrices.ndim != 3 or matrices.shape[1:] != (2, 3) or n_images != len(matrices):
            raise ValueError(f"predict_with_matrices: expected N images and (N, 2, 3) matrices, got "
                             f"{n_images} images and matrices of shape {matrices.shape}")
        return matrices

    def _crops(self, images, matrices):
        from flzoo.data.crop import warp

        if isinstance(images, np.ndarray) and images.ndim == 3:
            images = [images] * len(matrices)  # one photo, many faces
        return np.stack([warp(read_image(img, f"image {i}"), m, self.input_size)
                         for i, (img, m) in enumerate(zip(images, matrices))]).astype(np.float32)

    def _pass(self, crops):
        """One network pass: crop points (N, 68, 2) float64 and, for map variants, their point confidences
        (N, 68) from the same output (else None)."""
        from flzoo.confidence import has_maps, predict_scored

        if has_maps(self.model):
            points, conf = predict_scored(self.model, crops, self.batch_size)
            return np.asarray(points, np.float64), np.asarray(conf, np.float64)
        return np.asarray(self.model.predict_points(crops, batch_size=self.batch_size), np.float64), None

    def _mirrored(self, crops):
        """``_pass`` on the mirrored crops, relabelled and mapped back to the unmirrored crop frame."""
        points, conf = self._pass(np.ascontiguousarray(crops[:, :, ::-1]))
        points = points[:, MIRROR]
        points[..., 0] = self.input_size - 1 - points[..., 0]  # pixel centres at integers: x -> S - 1 - x
        return points, None if conf is None else conf[:, MIRROR]

    def _network(self, crops):
        """``(crop points (N, 68, 2) float64, point confidence (N, 68) or None, flip disagreement (N, 68) or
        None)``: one pass (two with flip)."""
        return self._flipped(crops, *self._pass(crops))

    def _flipped(self, crops, points, conf):
        """With ``flip``: average a pass's ``points`` / ``conf`` with the mirrored crops' pass, and return the
        flip disagreement the face confidence needs; without: them as they are, disagreement None."""
        from flzoo.confidence import flip_confidence, flip_disagreement

        if not self.flip:
            return points, conf, None
        mirrored, mirrored_conf = self._mirrored(crops)
        disagreement = flip_disagreement(points, mirrored)
        conf = flip_confidence(disagreement) if conf is None else (conf + mirrored_conf) / 2
        return (points + mirrored) / 2, conf, disagreement

    def _score(self, crops, points, conf, disagreement, details=False):
        """Point and face confidences of crop points (making the mirrored pass when ``_network`` did not)."""
        from flzoo.confidence import face_confidence, flip_confidence, flip_disagreement, has_maps, shape_judge

        n = len(points)
        if n == 0:
            return {"point_confidence": np.zeros((0, NUM_POINTS), np.float32), "confidence": np.zeros(0, np.float32)}
        if disagreement is None:
            disagreement = flip_disagreement(points, self._mirrored(crops)[0])
        if conf is None:  # point variants: flip consistency per point
            conf = flip_confidence(disagreement)
        out = {"point_confidence": np.clip(conf, 0, 1).astype(np.float32),
               "confidence": np.clip(face_confidence(conf, disagreement, has_maps(self.model)), 0, 1
                                     ).astype(np.float32)}
        if details:
            out["flip_disagreement"] = disagreement.astype(np.float32)
            judge = shape_judge(self.model)
            if judge is not None:
                out["shape_probability"] = judge(points).astype(np.float32)
        return out

    @staticmethod
    def _to_photo(matrices, points):
        from flzoo.data.crop import invert, transform_points

        if len(matrices) == 0:
            return np.zeros((0, NUM_POINTS, 2), np.float32)
        return np.stack([transform_points(invert(m), p) for m, p in zip(matrices, points)]).astype(np.float32)

    def box_matrix(self, box):
        """Photo -> crop matrix for a landmark-box estimate ``(x0, y0, x1, y1)``, with the training protocol."""
        x0, y0, x1, y1 = box
        return self.crop.matrix(np.array([[x0, y0], [x1, y1]]), self.input_size)

    def _refined_matrix(self, points, previous):
        """The training crop from predicted points, or ``None`` when the points cannot define a sane crop."""
        from flzoo.data.crop import matrix_scale

        if not np.all(np.isfinite(points)):
            return None
        try:
            m = self.crop.matrix(points, self.input_size)
        except ValueError:  # all points on one spot
            return None
        change = matrix_scale(m) / matrix_scale(previous)
        return m if 1 / MAX_REFINE_CHANGE <= change <= MAX_REFINE_CHANGE else None

    # ---- photos -------------------------------------------------------------------------------------------

    def detect(self, image):
        """Face boxes and scores of one RGB image through the detector: ``[(box, score), ...]``."""
        from flzoo.detect import normalise_detections

        if self.detector is None:
            raise ValueError("this Landmarker has no face detector (detector=None): pass boxes= to predict")
        return normalise_detections(self.detector(image), image_shape=np.shape(image))

    def predict(self, images, boxes=None):
        """Faces in one photo or a list of photos (RGB uint8 arrays or paths).

        One photo -> a list of faces; a list -> a list of such lists. A face is
        ``{"points": (68, 2) float32 photo pixels, "box": (x0, y0, x1, y1), "score": float or None,
        "confidence": float in [0, 1] (low: likely wrong), "point_confidence": (68,) float32 in [0, 1]}``
        (``flzoo.confidence``), in the detector's order (most confident detection first). ``boxes``
        (optional) replaces detection: for one photo a list of ``(x0, y0, x1, y1)``
        landmark-box estimates, for a list of photos one such list per photo. No face -> an empty list."""
        from flzoo.detect import check_box

        single = not isinstance(images, (list, tuple))
        batch = [images] if single else list(images)
        if boxes is not None:
            boxes = [boxes] if single else list(boxes)
            if len(boxes) != len(batch):
                raise ValueError(f"boxes: expected one list of boxes per image ({len(batch)}), got {len(boxes)}")
        faces, pixels = [], []  # faces: (image index, box, score)
        for i, item in enumerate(batch):
            where = str(item) if isinstance(item, (str, Path)) else f"image {i}"
            img = read_image(item, where)
            pixels.append(img)
            if boxes is None:
                found = self.detect(img)
            else:
                found = [(check_box(b, f"boxes for {where}, box {j}", img.shape), None)
                         for j, b in enumerate(boxes[i])]
            faces.extend((i, box, score) for box, score in found)

        results = [[] for _ in batch]
        if faces:
            scored = self._refine_and_score([pixels[i] for i, _, _ in faces],
                                            [self.box_matrix(box) for _, box, _ in faces], self.refine)
            for k, (i, box, score) in enumerate(faces):
                results[i].append({"points": scored["points"][k], "box": tuple(float(v) for v in box),
                                   "score": score, "confidence": float(scored["confidence"][k]),
                                   "point_confidence": scored["point_confidence"][k]})
        return results[0] if single else results

    def track(self, frames, **options):
        """Landmarks through a sequence of RGB frames (a video): a generator of one list of faces per frame,
        each face as for ``predict`` plus ``"id"``. Detects on the first frame, then crops each face from its
        previous landmarks; options ``detect_every``, ``min_confidence``, ``smooth``, ``min_cutoff``, ``beta``,
        ``fps`` (``flzoo.video.track``)."""
        from flzoo.video import track

        return track(self, frames, **options)

    def _refine_and_score(self, imgs, matrices, passes, details=False):
        """Predict each face from its first crop, re-crop from the points ``passes`` times (the refinement
        pass), then score the final points: the ``predict_scored_with_matrices`` dict, plus ``"matrices"``."""
        matrices = list(matrices)
        crops = self._crops(imgs, matrices)
        crop_points, conf = self._pass(crops)
        for _ in range(passes):
            refined = [self._refined_matrix(p, m) for p, m in zip(self._to_photo(matrices, crop_points), matrices)]
            todo = [k for k, m in enumerate(refined) if m is not None]
            if not todo:
                break
            new_crops = self._crops([imgs[k] for k in todo], [refined[k] for k in todo])
            new_points, new_conf = self._pass(new_crops)
            for j, k in enumerate(todo):
                crops[k], crop_points[k], matrices[k] = new_crops[j], new_points[j], refined[k]
                if conf is not None:
                    conf[k] = new_conf[j]
        # flip mirrors the final crop only: the earlier passes just place it, and the face confidence needs
        # that mirrored pass anyway, so flip costs no extra pass here
        crop_points, conf, disagreement = self._flipped(crops, crop_points, conf)
        out = self._score(crops, crop_points, conf, disagreement, details)
        out.update(points=self._to_photo(matrices, crop_points), matrices=np.asarray(matrices))
        return out


__all__ = ["load", "Landmarker", "read_image", "resolve_folder"]
