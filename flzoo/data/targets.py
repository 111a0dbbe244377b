"""Training targets built in numpy from points in MAP coordinates.

A map of stride ``s`` over an ``S x S`` crop has ``S // s`` pixels a side; its pixel centres sit at integer
map coordinates, ``map = (crop + 0.5) / s - 0.5`` (``flzoo.data.crop.crop_to_map``). ``sigma`` is in MAP pixels. Channel layout of 69-channel maps: 0 = background, l + 1 =
landmark l, the same as PWC class ids.
"""

from dataclasses import dataclass

import numpy as np

KINDS = ("points", "gaussian", "heatmap_reg", "pwc")


@dataclass(frozen=True)
class TargetSpec:
    """What ``y["maps"]`` a model trains on. ``kind``: ``points`` (no maps), ``gaussian`` (68 channels, each
    a normalised distribution), ``heatmap_reg`` (69 channels, peak-1 Gaussians + background), ``pwc`` (int32
    class labels). ``stride``: crop pixels per map pixel. ``sigma``: Gaussian std in map pixels."""

    kind: str = "points"
    stride: int = 1
    sigma: float = 3.0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"target.kind must be one of {KINDS}, got {self.kind!r}")
        if isinstance(self.stride, bool) or not isinstance(self.stride, (int, np.integer)) or self.stride < 1:
            raise ValueError(f"target.stride must be a positive integer, got {self.stride!r}")
        if not float(self.sigma) > 0:
            raise ValueError(f"target.sigma must be > 0 (map pixels), got {self.sigma!r}")

    def map_size(self, input_size: int) -> int:
        if input_size % self.stride:
            raise ValueError(f"input size {input_size} is not a multiple of target.stride {self.stride}")
        return input_size // self.stride

    def build(self, points_map, size: int):
        """The map target for one face's ``(68, 2)`` map-coordinate points (None for ``points``)."""
        if self.kind == "gaussian":
            return gaussian_maps(points_map, size, self.sigma, normalise=True)
        if self.kind == "heatmap_reg":
            return heatmap_reg_maps(points_map, size, self.sigma)
        if self.kind == "pwc":
            return pwc_labels(points_map, size)
        return None


def _inside(points, size):
    """Landmarks whose position lies on the map's pixel area [-0.5, size - 0.5)."""
    p = np.asarray(points, dtype=np.float64)
    return np.all((p >= -0.5) & (p < size - 0.5), axis=-1)


def gaussian_maps(points, size, sigma, normalise=False):
    """``(size, size, 68)`` float32 Gaussians centred on each landmark (map coordinates, ``sigma`` map px).

    ``normalise=False``: peak value 1 at the landmark position. ``normalise=True``: each channel sums to 1
    (a distribution, for the KL loss); a landmark outside the map gets an all-zero channel rather than a
    truncated tail that would pretend it lies on the border."""
    p = np.asarray(points, dtype=np.float64)
    grid = np.arange(size, dtype=np.float64)
    gx = np.exp(-((grid[None, :] - p[:, 0:1]) ** 2) / (2.0 * sigma**2))  # (68, size)
    gy = np.exp(-((grid[None, :] - p[:, 1:2]) ** 2) / (2.0 * sigma**2))
    maps = gy[:, :, None] * gx[:, None, :]  # (68, y, x), separable
    if normalise:
        total = maps.sum(axis=(1, 2), keepdims=True)
        keep = _inside(p, size)[:, None, None] & (total > 0)
        maps = np.where(keep, maps / np.where(total > 0, total, 1.0), 0.0)
    return np.ascontiguousarray(maps.transpose(1, 2, 0), dtype=np.float32)


def heatmap_reg_maps(points, size, sigma):
    """``(size, size, 69)`` float32: channel 0 background ``1 - max_l G_l``, channel l + 1 the peak-1
    Gaussian of landmark l (points outside the map leave only their tail on the map)."""
    g = gaussian_maps(points, size, sigma, normalise=False)
    background = 1.0 - g.max(axis=-1, keepdims=True)
    return np.concatenate([background, g], axis=-1)


def pwc_labels(points, size):
    """``(size, size)`` int32 labels: class l + 1 at the pixel nearest landmark l, 0 elsewhere.

    Points outside the map are dropped (no pixel). When landmarks share a pixel, the one nearest the pixel
    centre keeps it (ties: the lower index); the others get no pixel (the authors' code let the last index
    overwrite)."""
    p = np.asarray(points, dtype=np.float64)
    labels = np.zeros((size, size), dtype=np.int32)
    idx = np.floor(p + 0.5).astype(np.int64)  # round half up: pixel i covers [i - 0.5, i + 0.5)
    ok = np.all((idx >= 0) & (idx < size), axis=1)
    dist = np.sum((p - idx) ** 2, axis=1)
    # write farthest first so the nearest landmark of a shared pixel is written last
    order = sorted(np.flatnonzero(ok), key=lambda l: (-dist[l], -l))
    for l in order:
        labels[idx[l, 1], idx[l, 0]] = l + 1
    return labels


def stack_targets(spec: TargetSpec, points_map_batch, size):
    """Batch of map targets for ``(B, 68, 2)`` map-coordinate points; None for ``points``."""
    if spec.kind == "points":
        return None
    return np.stack([spec.build(p, size) for p in points_map_batch])


__all__ = ["TargetSpec", "KINDS", "gaussian_maps", "heatmap_reg_maps", "pwc_labels", "stack_targets"]
