"""Per-sample augmentation: the paper's rotation U(-30, 30) deg and scale U(0.6, 1.0), an optional mirror
(with the 68-point permutation) and optional photometric jitter, all drawn from a seeded generator.

Geometry goes into the sample's single photo -> crop matrix (``crop.crop_matrix``); only the photometric part
touches pixels after the warp."""

from dataclasses import dataclass, fields

import numpy as np

SHIFT_CLIP = 2.5  # the crop-centre shift is normal, clipped at this many standard deviations


@dataclass(frozen=True)
class AugmentParams:
    """One sample's draw."""

    angle: float = 0.0        # degrees, counter-clockwise on screen
    scale: float = 1.0        # face size in the crop relative to the plain crop
    flip: bool = False
    brightness: float = 0.0   # added, in 0..255 units
    contrast: float = 1.0     # multiplies the deviation from the image mean
    saturation: float = 1.0   # multiplies the deviation from the grey value
    shift_x: float = 0.0      # crop-centre offset in photo x, in units of the plain crop's side
    shift_y: float = 0.0


@dataclass(frozen=True)
class AugmentConfig:
    """What to draw per sample. ``rotation``: max |angle| in degrees (uniform); ``scale``: (low, high) uniform;
    ``flip``: mirror with probability 0.5; ``photometric``: jitter strength p in [0, 1): brightness +-p*255,
    contrast and saturation factors in [1-p, 1+p] (0 disables it; True means 0.2); ``shift``: standard
    deviation of the crop-centre offset per axis, in units of the crop side (normal, clipped at
    ``SHIFT_CLIP`` deviations): face boxes from a detector sit off the landmark box by about this much."""

    rotation: float = 30.0
    scale: tuple = (0.6, 1.0)
    flip: bool = False
    photometric: float = 0.0
    shift: float = 0.0

    def __post_init__(self):
        if isinstance(self.photometric, bool):
            object.__setattr__(self, "photometric", 0.2 if self.photometric else 0.0)
        try:
            scale = tuple(float(v) for v in self.scale)
        except TypeError:
            scale = ()
        if len(scale) != 2 or not 0 < scale[0] <= scale[1]:
            raise ValueError(f"augment.scale must be [low, high] with 0 < low <= high, got {self.scale!r}")
        object.__setattr__(self, "scale", scale)
        if not 0 <= float(self.rotation) <= 180:
            raise ValueError(f"augment.rotation must be a maximum angle in degrees in [0, 180], "
                             f"got {self.rotation!r}")
        if not 0 <= float(self.photometric) < 1:
            raise ValueError(f"augment.photometric must be in [0, 1), got {self.photometric!r}")
        if not isinstance(self.flip, bool):
            raise ValueError(f"augment.flip must be true or false, got {self.flip!r}")
        if not 0 <= float(self.shift) <= 0.5:
            raise ValueError(f"augment.shift must be in [0, 0.5] (a fraction of the crop side), got {self.shift!r}")

    def sample(self, rng: np.random.Generator) -> AugmentParams:
        """Draw one sample's parameters. Always consumes the same numbers from ``rng`` whatever the options,
        so switching flip or jitter on does not change the geometry drawn for a seed (the shift is drawn after
        the first six numbers, so recipes without it draw exactly what they drew before it existed)."""
        u = rng.random(6)
        shift = np.clip(rng.standard_normal(2), -SHIFT_CLIP, SHIFT_CLIP) * float(self.shift)
        p = float(self.photometric)
        low, high = self.scale
        return AugmentParams(
            angle=float((2 * u[0] - 1) * self.rotation),
            scale=float(low + u[1] * (high - low)),
            flip=bool(self.flip and u[2] < 0.5),
            brightness=float((2 * u[3] - 1) * p * 255.0),
            contrast=float(1 + (2 * u[4] - 1) * p),
            saturation=float(1 + (2 * u[5] - 1) * p),
            shift_x=float(shift[0]),
            shift_y=float(shift[1]),
        )

    def max_extent(self) -> float:
        """Largest half-width of the photo window any draw can see, in units of the plain crop's half side."""
        angle = np.radians(min(float(self.rotation), 45.0))
        # a shift of d sides moves the window centre by 2d half sides
        return float((np.cos(angle) + np.sin(angle)) / self.scale[0] + 2 * SHIFT_CLIP * float(self.shift))


def photometric(image, params: AugmentParams) -> np.ndarray:
    """Apply brightness / contrast / saturation to an RGB image; returns float32 clipped to [0, 255]."""
    x = np.asarray(image, dtype=np.float32)
    if params.saturation != 1.0:
        grey = x.mean(axis=-1, keepdims=True)
        x = grey + (x - grey) * params.saturation
    if params.contrast != 1.0:
        mean = x.mean()
        x = mean + (x - mean) * params.contrast
    if params.brightness != 0.0:
        x = x + params.brightness
    return np.clip(x, 0.0, 255.0)
