"""The crop protocol and the photo <-> crop frame change.

Photo and crop pixels have their centres at integer coordinates (OpenCV ``warpAffine`` convention), so the
crop window ``[cx - side/2, cx + side/2]`` maps onto ``[-0.5, size - 0.5]``. One 2x3 affine matrix
(photo -> crop) carries the whole geometry of a sample: window, rotation, scale and flip. Points go through it
exactly (float64, never rounded); its inverse brings predictions back to the photo.
"""

import math
from dataclasses import dataclass, replace

import numpy as np

CENTRES = ("box", "centroid")


def crop_to_map(points, stride):
    """Crop (input-pixel) coordinates -> coordinates of an output map at ``stride``, whose cell (i, j) covers
    input pixels ``[j*s - 0.5, (j+1)*s - 0.5)``. Plain arithmetic: numpy arrays and keras tensors alike."""
    return (points + 0.5) / stride - 0.5


def map_to_crop(points, stride):
    """Output-map coordinates at ``stride`` -> crop (input-pixel) coordinates; inverse of ``crop_to_map``."""
    return (points + 0.5) * stride - 0.5


# Normalised crop frames: the crop square as [-0.5, 0.5]^2 ("centred": what regression heads output and the shape
# discriminator sees) or [0, 1]^2 ("unit": the mean-shape file). The centred frame is the map of one cell that
# covers the whole crop (stride = crop size), so it is the same change as crop <-> map.

def crop_to_centred(points, size):
    return crop_to_map(points, size)


def centred_to_crop(points, size):
    return map_to_crop(points, size)


def unit_to_crop(points, size):
    return centred_to_crop(points - 0.5, size)


def crop_square(points, scale=1.3, centre="box"):
    """The paper's crop: a square of side ``scale * max(box width, box height)`` of the landmark box.

    ``centre="box"`` (default, as the authors' code did) centres it on the box midpoint; ``"centroid"`` (as the
    paper's text says) on the mean of the points. Returns ``(cx, cy, side)`` in photo pixels."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if pts.shape[0] == 0 or not np.all(np.isfinite(pts)):
        raise ValueError(f"crop_square: points must be finite (N, 2) coordinates, got shape {np.shape(points)}")
    if centre not in CENTRES:
        raise ValueError(f"crop_square: centre must be one of {CENTRES}, got {centre!r}")
    if not scale > 0:
        raise ValueError(f"crop_square: scale must be > 0, got {scale!r}")
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    side = float(scale * max(hi - lo))
    if not side > 0:
        raise ValueError("crop_square: the landmark box has zero size (all points coincide)")
    c = (lo + hi) / 2.0 if centre == "box" else pts.mean(axis=0)
    return float(c[0]), float(c[1]), side


def crop_matrix(cx, cy, side, size, angle_deg=0.0, scale=1.0, flip=False):
    """Photo -> crop affine ``(2, 3)`` float64 for the square window ``(cx, cy, side)`` resized to ``size``.

    ``angle_deg`` rotates the content counter-clockwise on screen (as ``cv2.getRotationMatrix2D``);
    ``scale`` < 1 shrinks the face in the crop (a wider photo window); ``flip`` mirrors the crop left-right
    (callers also permute the points with ``MIRROR`` so index l keeps its meaning)."""
    if not side > 0 or not size > 0 or not scale > 0:
        raise ValueError(f"crop_matrix: side, size and scale must be > 0, got side={side}, size={size}, "
                         f"scale={scale}")
    k = size / side * scale
    a = math.radians(angle_deg)
    c, s = math.cos(a) * k, math.sin(a) * k
    linear = np.array([[c, s], [-s, c]], dtype=np.float64)
    if flip:
        linear[0] = -linear[0]
    mid = (size - 1) / 2.0  # the crop centre in pixel-centre coordinates
    offset = np.array([mid, mid]) - linear @ np.array([cx, cy], dtype=np.float64)
    return np.concatenate([linear, offset[:, None]], axis=1)


@dataclass(frozen=True)
class CropProtocol:
    """How a face becomes a model's input: a square ``scale`` x the landmark box's longer side, centred on the
    box midpoint (``"box"``) or the points' centroid (``"centroid"``), resampled to the model's input size.
    Training writes it into the model's ``config.json`` (field ``crop``), and inference and evaluation crop
    with what they read there, so a model is always fed the crops it was trained on."""

    scale: float = 1.3
    centre: str = "box"

    def __post_init__(self):
        scale = self.scale
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"'scale' must be a number > 0 (the crop side over the landmark box side, 1.3 in "
                             f"training), got {scale!r}")
        if self.centre not in CENTRES:
            raise ValueError(f"'centre' must be one of {', '.join(map(repr, CENTRES))}, got {self.centre!r}")
        object.__setattr__(self, "scale", float(scale))

    def square(self, points):
        """``(cx, cy, side)`` of the crop square around ``points`` (photo pixels)."""
        return crop_square(points, self.scale, self.centre)

    def matrix(self, points, size):
        """The photo -> crop matrix of a ``size`` px crop around ``points`` (no augmentation)."""
        return crop_matrix(*self.square(points), size)

    def to_config(self):
        return {"scale": self.scale, "centre": self.centre}

    def updated(self, fields, where):
        """This protocol with the fields of ``fields`` (None, or a dict with optional ``scale`` / ``centre``: a
        config.json field or a user override) replaced; ``ValueError`` naming ``where`` when they are wrong."""
        if fields is None:
            return self
        if not isinstance(fields, dict):
            raise ValueError(f"{where}: expected an object {{\"scale\": float > 0, \"centre\": \"box\" | "
                             f"\"centroid\"}}, got {fields!r}")
        unknown = sorted(set(fields) - {"scale", "centre"})
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; expected 'scale' and/or "
                             f"'centre'")
        try:
            return replace(self, **fields)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None


def invert(matrix):
    """Inverse of a 2x3 affine matrix (crop -> photo for a photo -> crop matrix)."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (2, 3):
        raise ValueError(f"invert: expected a (2, 3) affine matrix, got shape {m.shape}")
    linear_inv = np.linalg.inv(m[:, :2])
    return np.concatenate([linear_inv, (-linear_inv @ m[:, 2])[:, None]], axis=1)


def compose(outer, inner):
    """The 2x3 affine ``outer o inner`` (apply ``inner`` first)."""
    o = np.asarray(outer, dtype=np.float64)
    i = np.asarray(inner, dtype=np.float64)
    return np.concatenate([o[:, :2] @ i[:, :2], (o[:, :2] @ i[:, 2] + o[:, 2])[:, None]], axis=1)


def transform_points(matrix, points):
    """Apply a 2x3 affine to points ``(..., 2)``; float64 maths, returned as float32 unless given float64."""
    m = np.asarray(matrix, dtype=np.float64)
    pts = np.asarray(points)
    out = pts.astype(np.float64) @ m[:, :2].T + m[:, 2]
    return out if pts.dtype == np.float64 else out.astype(np.float32)


def matrix_scale(matrix):
    """Isotropic scale factor of an affine (sqrt of |det|): crop pixels per photo pixel."""
    m = np.asarray(matrix, dtype=np.float64)
    return math.sqrt(abs(np.linalg.det(m[:, :2])))


def shrink_region(image, matrix, size, margin=2):
    """Cut from ``image`` the part a ``size x size`` crop through ``matrix`` can see and, when the crop
    shrinks it, pre-resize that part with area averaging (so no aliasing from a bilinear warp).

    Returns ``(region, region_matrix)``, ``region_matrix`` mapping photo -> region pixels. ``region`` may be empty
    (shape with a 0) when the crop lies outside the photo."""
    h, w = image.shape[:2]
    corners = np.array([[-0.5, -0.5], [size - 0.5, -0.5], [-0.5, size - 0.5], [size - 0.5, size - 0.5]])
    photo = transform_points(invert(matrix), corners)
    x0 = max(int(math.floor(photo[:, 0].min())) - margin, 0)
    y0 = max(int(math.floor(photo[:, 1].min())) - margin, 0)
    x1 = min(int(math.ceil(photo[:, 0].max())) + margin + 1, w)
    y1 = min(int(math.ceil(photo[:, 1].max())) + margin + 1, h)
    return resample_region(image, x0, y0, max(x1, x0), max(y1, y0), matrix_scale(matrix))


def resample_region(image, x0, y0, x1, y1, k):
    """``image[y0:y1, x0:x1]`` resized by ``k`` (area averaging) when ``k < 1``, else kept as is.

    Returns ``(region, photo -> region matrix)``; the matrix uses the exact per-axis factors of the resize."""
    import cv2

    part = image[y0:y1, x0:x1]
    ph, pw = part.shape[:2]
    if k >= 1.0 or ph == 0 or pw == 0:
        return np.ascontiguousarray(part), np.array([[1.0, 0, -x0], [0, 1.0, -y0]])
    nw, nh = max(1, round(pw * k)), max(1, round(ph * k))
    small = cv2.resize(part, (nw, nh), interpolation=cv2.INTER_AREA)
    kx, ky = nw / pw, nh / ph
    # pixel-centre convention: region edge -0.5 stays at -0.5 after resizing
    return small, np.array([[kx, 0, (0.5 - x0) * kx - 0.5], [0, ky, (0.5 - y0) * ky - 0.5]])


def warp_region(region, region_matrix, matrix, size):
    """Warp a cached region (photo -> region ``region_matrix``) through the photo -> crop ``matrix``."""
    import cv2

    if region.shape[0] == 0 or region.shape[1] == 0:
        return np.zeros((size, size) + region.shape[2:], dtype=np.uint8)
    m = compose(matrix, invert(region_matrix)).astype(np.float32)
    return cv2.warpAffine(region, m, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def warp(image, matrix, size):
    """The ``size x size`` uint8 crop of an RGB uint8 ``image`` through the photo -> crop ``matrix``.

    Bilinear, black outside the photo; large shrink factors are pre-resized with area averaging first."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"warp: expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}")
    region, region_matrix = shrink_region(image, matrix, size)
    return warp_region(region, region_matrix, matrix, size)
