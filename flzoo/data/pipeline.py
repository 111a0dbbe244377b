"""Training / validation batches: ``FaceBatches``, a ``keras.utils.PyDataset`` usable on every backend.

Each face is decoded once; the cache keeps the part of the photo any augmentation can see, already resized
to the model's input resolution, and every sample is one affine warp of that region. Batches are a pure
function of ``(seed, epoch, index)``: the epoch's order comes from ``(seed, epoch)`` and each face's
augmentation from ``(seed, epoch, face number)``, so a resumed run sees exactly the data an uninterrupted one
would, whatever the batch size of neighbouring faces.
"""

import math

import keras
import numpy as np

from flzoo.data.augment import AugmentConfig, AugmentParams, photometric
from flzoo.data.crop import CropProtocol, crop_matrix, crop_to_map, resample_region, transform_points, warp_region
from flzoo.data.datasets import load_image
from flzoo.data.targets import TargetSpec, stack_targets
from flzoo.landmarks import MIRROR


class FaceBatches(keras.utils.PyDataset):
    """Batches ``(x, y)``: ``x`` float32 ``(B, S, S, 3)`` RGB in [0, 255]; ``y["points"]`` float32
    ``(B, 68, 2)`` in input pixels; ``y["maps"]`` for map targets (see ``flzoo.data.targets``).

    ``crop``: the crop protocol (``crop.CropProtocol``). ``workers`` etc. go to PyDataset.

    Epochs: pass ``callbacks=[batches.epoch_callback()]`` to ``fit`` so each epoch's data is that of Keras's
    epoch number (also after ``fit(initial_epoch=e)``), or call ``set_epoch`` yourself. Without either, the
    epoch only advances when Keras calls ``on_epoch_end``, which backends do a different number of times
    (TensorFlow also once before training), so only the callback makes runs comparable across backends."""

    def __init__(self, faces, input_size, batch_size, target=None, augment=None, shuffle=False, seed=0,
                 crop=None, drop_remainder=False, **kwargs):
        super().__init__(**kwargs)
        self.faces = list(faces)
        if not self.faces:
            raise ValueError("FaceBatches: no faces given")
        if not (isinstance(input_size, (int, np.integer)) and input_size > 0):
            raise ValueError(f"FaceBatches: input_size must be a positive integer, got {input_size!r}")
        if not (isinstance(batch_size, (int, np.integer)) and batch_size > 0):
            raise ValueError(f"FaceBatches: batch_size must be a positive integer, got {batch_size!r}")
        if target is not None and not isinstance(target, TargetSpec):
            raise ValueError(f"FaceBatches: target must be a TargetSpec, got {type(target).__name__}")
        if augment is not None and not isinstance(augment, AugmentConfig):
            raise ValueError(f"FaceBatches: augment must be an AugmentConfig or None, got {type(augment).__name__}")
        self.input_size = int(input_size)
        self.batch_size = int(batch_size)
        self.target = target or TargetSpec("points")
        self.map_size = self.target.map_size(self.input_size)  # checks the stride divides the input
        self.augment = augment
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_remainder = bool(drop_remainder)
        if self.drop_remainder and len(self.faces) < self.batch_size:
            raise ValueError(f"FaceBatches: drop_remainder with {len(self.faces)} faces < batch_size "
                             f"{self.batch_size} leaves no batch")
        self.crop = crop or CropProtocol()
        self.boxes = []
        for face in self.faces:
            try:
                self.boxes.append(self.crop.square(face.points))
            except ValueError as err:
                raise ValueError(f"{face.image_path}: {err}") from None
        self._cache = {}
        self.set_epoch(0)

    # ------------------------------------------------------------ epochs and order

    def set_epoch(self, epoch):
        """Select epoch ``epoch``'s order and augmentation draws for ``batches[i]``."""
        self.epoch = int(epoch)
        self.order = self.epoch_order(self.epoch)

    def epoch_order(self, epoch):
        """The face numbers of epoch ``epoch`` in batch order."""
        n = len(self.faces)
        return np.random.default_rng([self.seed, int(epoch)]).permutation(n) if self.shuffle else np.arange(n)

    def on_epoch_end(self):
        self.set_epoch(self.epoch + 1)  # fallback only; epoch_callback() sets the true epoch at its start

    def epoch_callback(self):
        """A Keras callback that calls ``set_epoch(epoch)`` at the start of every epoch of ``fit``."""
        return _SetEpoch(self)

    def __len__(self):
        n = len(self.faces)
        return n // self.batch_size if self.drop_remainder else math.ceil(n / self.batch_size)

    # ------------------------------------------------------------ samples

    def params(self, face_number, epoch=None) -> AugmentParams:
        """The augmentation draw of face ``face_number`` (its index in ``faces``) in ``epoch``."""
        if self.augment is None:
            return AugmentParams()
        epoch = self.epoch if epoch is None else int(epoch)
        return self.augment.sample(np.random.default_rng([self.seed, epoch, int(face_number)]))

    def matrix(self, face_number, params: AugmentParams):
        cx, cy, side = self.boxes[face_number]
        cx, cy = cx + params.shift_x * side, cy + params.shift_y * side
        return crop_matrix(cx, cy, side, self.input_size, params.angle, params.scale, params.flip)

    def region(self, face_number):
        """The cached ``(region, photo -> region matrix)`` of a face; decodes the image the first time."""
        cached = self._cache.get(face_number)
        if cached is None:
            cached = self._cut_region(face_number)
            self._cache[face_number] = cached
        return cached

    def warm_cache(self, threads=None):
        """Decode every face now, on ``threads`` threads (default: the CPU count; OpenCV releases the GIL)."""
        import os
        from concurrent.futures import ThreadPoolExecutor

        missing = [i for i in range(len(self.faces)) if i not in self._cache]
        with ThreadPoolExecutor(max_workers=threads or os.cpu_count() or 1) as pool:
            for number, cached in zip(missing, pool.map(self._cut_region, missing)):
                self._cache[number] = cached
        return self

    def _cut_region(self, face_number):
        face = self.faces[face_number]
        image = load_image(face)
        cx, cy, side = self.boxes[face_number]
        extent, zoom = 1.0, 1.0
        if self.augment is not None:
            extent, zoom = self.augment.max_extent(), max(1.0, self.augment.scale[1])
        half = side / 2.0 * extent + 2.0 * side / self.input_size  # + 2 input pixels for bilinear taps
        h, w = image.shape[:2]
        x0, y0 = max(0, math.floor(cx - half)), max(0, math.floor(cy - half))
        x1, y1 = min(w, math.ceil(cx + half) + 1), min(h, math.ceil(cy + half) + 1)
        return resample_region(image, x0, y0, max(x0, x1), max(y0, y1), self.input_size / side * zoom)

    def sample(self, face_number, epoch=None):
        """One face as ``(crop uint8 (S, S, 3), points float32 (68, 2) input pixels, params, matrix)``;
        the photometric jitter is not applied here."""
        params = self.params(face_number, epoch)
        matrix = self.matrix(face_number, params)
        region, region_matrix = self.region(face_number)
        crop = warp_region(region, region_matrix, matrix, self.input_size)
        points = transform_points(matrix, self.faces[face_number].points.astype(np.float64))
        if params.flip:
            points = points[MIRROR]
        return crop, points.astype(np.float32), params, matrix

    def __getitem__(self, index):
        return self.batch(index, self.epoch)

    def batch(self, index, epoch):
        """Batch ``index`` of epoch ``epoch``: a pure function of ``(seed, epoch, index)`` that touches no
        epoch state, so a prefetching thread may build it while the model trains."""
        if not 0 <= index < len(self):
            raise IndexError(f"FaceBatches: batch {index} out of range (0..{len(self) - 1})")
        order = self.order if epoch == self.epoch else self.epoch_order(epoch)
        numbers = order[index * self.batch_size:(index + 1) * self.batch_size]
        s = self.input_size
        x = np.empty((len(numbers), s, s, 3), dtype=np.float32)
        points = np.empty((len(numbers), 68, 2), dtype=np.float32)
        for j, number in enumerate(numbers):
            crop, points[j], params, _ = self.sample(number, epoch)
            x[j] = photometric(crop, params) if self.augment and self.augment.photometric else crop
        y = {"points": points}
        maps = stack_targets(self.target, crop_to_map(np.asarray(points, np.float64), self.target.stride),
                                 self.map_size)
        if maps is not None:
            y["maps"] = maps
        return x, y

    @property
    def cache_bytes(self):
        """Memory held by the decoded-region cache."""
        return sum(region.nbytes for region, _ in self._cache.values())


class _SetEpoch(keras.callbacks.Callback):
    """Keras fetches an epoch's first batch only after ``on_epoch_begin`` callbacks have run."""

    def __init__(self, batches):
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.set_epoch(epoch)
