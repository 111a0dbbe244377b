"""Pictures of faces with their points, for a person to look at (``flzoo data show``)."""

import numpy as np

# colour (RGB) per face part: jaw, brows, nose, eyes, mouth; index ranges 0-based
PARTS = ((0, 17, (255, 220, 0)), (17, 27, (255, 120, 0)), (27, 36, (0, 220, 255)),
         (36, 48, (0, 255, 80)), (48, 68, (255, 60, 200)))


def draw_points(image, points, radius=None):
    """A copy of RGB uint8 ``image`` with the 68 points drawn (sub-pixel positions, colour by face part);
    points 36 and 45 (outer eye corners) get a ring so left / right can be told apart."""
    import cv2

    out = np.ascontiguousarray(image, dtype=np.uint8).copy()
    radius = radius or max(1, round(out.shape[0] / 110))
    shift = 4  # cv2 draws at 1/16 px with shift=4
    for start, stop, colour in PARTS:
        for x, y in np.asarray(points, dtype=np.float64)[start:stop]:
            # pixel centres are integers: cv2 with shift maps (x, y) to the same pixel-centre convention
            centre = (int(round(x * 16)), int(round(y * 16)))
            cv2.circle(out, centre, radius * 16, colour, -1, cv2.LINE_AA, shift)
    for index, colour in ((36, (255, 0, 0)), (45, (0, 0, 255))):
        x, y = np.asarray(points, dtype=np.float64)[index]
        cv2.circle(out, (int(round(x * 16)), int(round(y * 16))), (radius + 2) * 16, colour, 1, cv2.LINE_AA, shift)
    return out


def grid(tiles, columns, labels=None, pad=4):
    """Tile equal-size RGB images in a grid with optional captions; returns RGB uint8."""
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


def write_png(path, image):
    """Write an RGB uint8 image as PNG; ``ValueError`` naming the path when it cannot be written."""
    import cv2

    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"{path}: could not encode the PNG")
    try:
        data.tofile(str(path))
    except OSError as err:
        raise ValueError(f"{path}: cannot write ({err.strerror})") from None
