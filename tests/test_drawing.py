import numpy as np
import pytest

from flzoo import drawing
from flzoo.landmarks import NUM_POINTS


def test_points_land_on_their_pixels_and_far_or_missing_points_are_skipped():
    image = np.zeros((64, 64, 3), np.uint8)
    points = np.full((NUM_POINTS, 2), np.nan)
    points[0] = (10.0, 20.0)      # jaw: drawn
    points[1] = (1e9, 5.0)        # far off the photo: skipped, cv2 would overflow
    out = drawing.draw_points(image, points, radius=1)
    assert image.sum() == 0, "the input is left untouched"
    assert tuple(out[20, 10]) == drawing.PART_COLOURS["jaw"]
    assert out[:, 30:].sum() == 0 and out[40:].sum() == 0


def test_faces_get_a_green_box_and_red_points():
    image = np.zeros((100, 100, 3), np.uint8)
    points = np.tile([50.0, 60.0], (NUM_POINTS, 1))
    out = drawing.draw_faces(image, [{"box": (20, 20, 80, 80), "points": points}])
    assert tuple(out[60, 50]) == drawing.RED
    assert out[20, 50, 1] > 100 and out[20, 50, 0] == 0  # the box's top edge


def test_comparison_enlarges_the_crop_about_pixel_centres():
    crop = np.zeros((32, 32, 3), np.float32)
    truth = np.tile([3.0, 3.0], (NUM_POINTS, 1))
    out = drawing.draw_comparison(crop, truth, truth + 100, "caption", min_side=256)
    assert out.shape == (256, 256, 3)
    # (3, 3) enlarged 8x about pixel centres is (27.5, 27.5)
    assert tuple(out[27, 27]) == drawing.GREEN and tuple(out[28, 28]) == drawing.GREEN


def test_encode_writes_png_and_jpg_only():
    image = np.zeros((8, 8, 3), np.uint8)
    assert drawing.encode(image, ".png")[:4] == b"\x89PNG"
    assert drawing.encode(image, ".JPG")[:2] == b"\xff\xd8"
    with pytest.raises(ValueError, match="'.gif'"):
        drawing.encode(image, ".gif")
