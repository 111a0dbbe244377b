"""Pictures of landmarks for a person to look at: photo overlays (``flzoo predict -o``), training-crop overlays
(a run's ``overlays/``) and face grids (``flzoo data show``). RGB uint8 in, RGB uint8 out.

Points are drawn at sub-pixel positions in flzoo's pixel-centre frame (pixel (i, j) is centred on (j, i)):
cv2 draws at 1/16 px with ``shift=4``, which keeps that convention."""

import numpy as np

from flzoo.landmarks import OUTER_EYE_CORNERS, PARTS

SHIFT = 4  # cv2 fixed-point bits: coordinates in 1/16 px
PART_COLOURS = {"jaw": (255, 220, 0), "brows": (255, 120, 0), "nose": (0, 220, 255), "eyes": (0, 255, 80),
                "mouth": (255, 60, 200)}
EYE_CORNER_COLOURS = ((255, 0, 0), (0, 0, 255))  # rings on points 36 (red) and 45 (blue): left from right
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")  # what encode writes
GREEN, RED, WHITE = (0, 200, 0), (255, 0, 0), (255, 255, 255)


def _fixed(x, y):
    return int(round(float(x) * 16)), int(round(float(y) * 16))


def _dots(out, points, radius, colour):
    h, w = out.shape[:2]
    for x, y in np.asarray(points, dtype=np.float64):
        if np.isfinite(x) and np.isfinite(y) and -w < x < 2 * w and -h < y < 2 * h:  # cv2 overflows far away
            _circle(out, (x, y), radius, colour, -1)


def _circle(out, centre, radius, colour, thickness):
    import cv2

    cv2.circle(out, _fixed(*centre), int(round(radius * 16)), colour, thickness, cv2.LINE_AA, SHIFT)


def draw_points(image, points, radius=None):
    """A copy of ``image`` with the 68 points coloured by face part, and rings on the outer eye corners."""
    out = np.ascontiguousarray(image, dtype=np.uint8).copy()
    radius = radius or max(1, round(out.shape[0] / 110))
    points = np.asarray(points, dtype=np.float64)
    for part, (start, stop) in PARTS.items():
        _dots(out, points[start:stop], radius, PART_COLOURS[part])
    for index, colour in zip(OUTER_EYE_CORNERS, EYE_CORNER_COLOURS):
        if np.isfinite(points[index]).all():
            _circle(out, points[index], radius + 2, colour, 1)
    return out


def draw_faces(image, faces):
    """A copy of photo ``image`` with each face's box (green) and points (red), sized to the face."""
    import cv2

    out = np.ascontiguousarray(image, dtype=np.uint8).copy()
    for face in faces:
        x0, y0, x1, y1 = face["box"]
        side = max(x1 - x0, y1 - y0)
        cv2.rectangle(out, _fixed(x0, y0), _fixed(x1, y1), GREEN, max(1, round(side / 150)), cv2.LINE_AA, SHIFT)
        _dots(out, face["points"], max(1, round(side / 100)), RED)
    return out


def draw_comparison(crop, truth, prediction, caption, min_side=256):
    """A training crop enlarged to at least ``min_side`` px with the ground truth (green), the prediction (red)
    and a caption."""
    import cv2

    zoom = max(1, int(np.ceil(min_side / crop.shape[0])))
    out = cv2.resize(np.clip(crop, 0, 255).astype(np.uint8), None, fx=zoom, fy=zoom,
                     interpolation=cv2.INTER_LINEAR)
    for points, colour in ((truth, GREEN), (prediction, RED)):
        _dots(out, (np.asarray(points, dtype=np.float64) + 0.5) * zoom - 0.5, 2, colour)  # zoom about -0.5
    cv2.putText(out, caption, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, WHITE, 1, cv2.LINE_AA)
    return out


def grid(tiles, columns, labels=None, pad=4):
    """Equal-size RGB images tiled in a grid with optional captions."""
    import cv2

    if not tiles:
        raise ValueError("grid: no images to tile")
    h, w = tiles[0].shape[:2]
    label_h = 16 if labels else 0
    rows = -(-len(tiles) // columns)
    sheet = np.full((rows * (h + label_h + pad) + pad, columns * (w + pad) + pad, 3), 255, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        y, x = pad + r * (h + label_h + pad), pad + c * (w + pad)
        sheet[y:y + h, x:x + w] = tile
        if labels:
            cv2.putText(sheet, labels[i][: max(4, w // 7)], (x, y + h + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                        (0, 0, 0), 1, cv2.LINE_AA)
    return sheet


def encode(image, suffix):
    """RGB ``image`` as the bytes of a ``.png`` or ``.jpg`` file; ``ValueError`` for another suffix."""
    import cv2

    ok, data = (False, None) if suffix.lower() not in IMAGE_SUFFIXES else \
        cv2.imencode(suffix.lower(), np.ascontiguousarray(image[:, :, ::-1]))
    if not ok:
        raise ValueError(f"cannot encode an image as {suffix!r}; expected .png or .jpg")
    return data.tobytes()


__all__ = ["draw_points", "draw_faces", "draw_comparison", "grid", "encode"]
