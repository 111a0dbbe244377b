"""Small fake 300-W / COFW-68 trees for the data-layer tests (written in the official formats)."""

from pathlib import Path

import cv2
import numpy as np

from flzoo.data.pts import write_pts


def face_points(cx=100.0, cy=110.0, size=80.0, seed=0):
    """A rough 68-point face (mean-shape-like layout) centred at (cx, cy) with a box of about ``size`` px."""
    rng = np.random.default_rng(seed)
    t = np.linspace(-1.0, 1.0, 17)
    jaw = np.stack([t * 0.5, 0.1 + 0.4 * np.sqrt(1 - 0.8 * t**2)], 1)
    brow_r = np.stack([np.linspace(-0.42, -0.08, 5), -0.22 - 0.03 * np.sin(np.linspace(0, np.pi, 5))], 1)
    brow_l = brow_r[::-1] * [-1, 1]
    bridge = np.stack([np.zeros(4), np.linspace(-0.15, 0.1, 4)], 1)
    nostrils = np.stack([np.linspace(-0.1, 0.1, 5), np.full(5, 0.17)], 1)
    a = np.linspace(0, 2 * np.pi, 7)[:6]
    eye_r = np.stack([-0.2 - 0.09 * np.cos(a), -0.1 - 0.03 * np.sin(a)], 1)
    eye_l = np.stack([0.2 + 0.09 * np.cos(a), -0.1 - 0.03 * np.sin(a)], 1)
    b = np.linspace(0, 2 * np.pi, 13)[:12]
    mouth_out = np.stack([-0.2 * np.cos(b), 0.33 + 0.08 * np.sin(-b)], 1)
    c = np.linspace(0, 2 * np.pi, 9)[:8]
    mouth_in = np.stack([-0.13 * np.cos(c), 0.33 + 0.03 * np.sin(-c)], 1)
    shape = np.concatenate([jaw, brow_r, brow_l, bridge, nostrils, eye_r, eye_l, mouth_out, mouth_in])
    shape = shape + rng.normal(0, 0.005, shape.shape)
    return (shape * size + [cx, cy]).astype(np.float32)


def write_face(folder, stem, ext=".jpg", width=200, height=220, seed=0, points=None):
    """Write ``stem.pts`` and an image ``stem+ext`` (a textured grey gradient) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pts = face_points(width / 2, height / 2, 0.4 * min(width, height), seed) if points is None else points
    write_pts(folder / f"{stem}.pts", pts)
    rng = np.random.default_rng(seed)
    image = (rng.integers(0, 60, (height, width, 3)) + np.linspace(0, 150, width)[None, :, None]).astype(np.uint8)
    cv2.imwrite(str(folder / f"{stem}{ext}"), image)
    return pts


# subset -> (folder, stems, image extension) as in the official downloads
LAYOUT = {
    "afw": ("afw", ["111076519_1", "111076519_2", "134212_1"], ".jpg"),
    "helen_train": ("helen/trainset", ["100040721_1", "100040721_2", "232194_1"], ".jpg"),
    "lfpw_train": ("lfpw/trainset", ["image_0001", "image_0002"], ".png"),
    "helen_test": ("helen/testset", ["296814969_3", "2968560214_1"], ".jpg"),
    "lfpw_test": ("lfpw/testset", ["image_0001"], ".png"),
    "ibug": ("ibug", ["image_003_1", "image_003_2", "image_004_1"], ".jpg"),
    "300w_indoor": ("300W/01_Indoor", ["indoor_001", "indoor_002"], ".png"),
    "300w_outdoor": ("300W/02_Outdoor", ["outdoor_001"], ".png"),
}


def write_tree(root, subsets=None):
    """Write the official 300-W layouts below ``root``; returns ``{subset: number of faces}``."""
    counts = {}
    for n, (subset, (folder, stems, ext)) in enumerate(LAYOUT.items()):
        if subsets is not None and subset not in subsets:
            continue
        for i, stem in enumerate(stems):
            write_face(Path(root) / folder, stem, ext, seed=100 * n + i)
        counts[subset] = len(stems)
    return counts


def cofw_image(i):
    """Test image number ``i`` (1-based) of the fake COFW set: odd colour, even grey, varied sizes."""
    rng = np.random.default_rng(i)
    h, w = 90 + 7 * i, 110 + 5 * i
    if i % 2 == 0:
        return rng.integers(0, 256, (h, w), dtype=np.uint8)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def write_cofw(root, n=3, v73=True, folder="COFW68_Data"):
    """COFW-68 as distributed: the benchmark's ``test_annotations/<i>_points.mat`` (v5, ``Points`` 68x2 1-based,
    ``Occ`` 68x1) and Caltech's ``COFW_test_color.mat`` holding the cell ``IsT`` of images (v7.3 = HDF5 with
    MATLAB's 512-byte header and column-major arrays, or v5). Returns the 0-based points and occlusion masks."""
    import scipy.io

    base = Path(root) / folder
    (base / "test_annotations").mkdir(parents=True, exist_ok=True)
    points, occs = [], []
    for i in range(1, n + 1):
        image = cofw_image(i)
        pts = face_points(image.shape[1] / 2, image.shape[0] / 2, 40, seed=i)
        occ = (np.arange(68) % (i + 2) == 0).astype(np.float64)[:, None]
        scipy.io.savemat(base / "test_annotations" / f"{i}_points.mat",
                         {"Points": pts.astype(np.float64) + 1.0, "Occ": occ})
        points.append(pts)
        occs.append(occ[:, 0].astype(bool))
    images = [cofw_image(i) for i in range(1, n + 1)]
    path = base / "COFW_test_color.mat"
    if v73:
        write_v73_cell(path, "IsT", images)
    else:
        cell = np.empty((n, 1), dtype=object)
        for i, image in enumerate(images):
            cell[i, 0] = image
        scipy.io.savemat(path, {"IsT": cell})
    return points, occs


def write_v73_cell(path, name, arrays):
    """A MATLAB v7.3 file with one N x 1 cell of arrays: HDF5 with a 512-byte user block holding MATLAB's text
    header, the cell as a dataset of object references into ``#refs#``, every array stored transposed
    (MATLAB is column-major)."""
    import h5py

    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")
        handles = []
        for i, a in enumerate(arrays):
            d = refs.create_dataset(f"r{i}", data=np.ascontiguousarray(a.T))
            d.attrs["MATLAB_class"] = np.bytes_("uint8")
            handles.append(d.ref)
        cell = f.create_dataset(name, (1, len(arrays)), dtype=h5py.ref_dtype)
        cell[0, :] = handles
        cell.attrs["MATLAB_class"] = np.bytes_("cell")
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    with open(path, "r+b") as f:
        f.write(header.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02IM")
