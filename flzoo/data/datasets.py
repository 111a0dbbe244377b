"""The 300-W family of datasets on disk: layouts, faces, images and the train / validation split.

Official layouts below a root folder (folder names matched case-insensitively):

    afw/                      afw            (train)
    helen/trainset/           helen_train    (train)
    lfpw/trainset/            lfpw_train     (train)
    helen/testset/            helen_test
    lfpw/testset/             lfpw_test
    ibug/                     ibug
    300W/01_Indoor/           300w_indoor
    300W/02_Outdoor/          300w_outdoor
    COFW68_Data/test_annotations/<i>_points.mat + COFW_test_color.mat     cofw

Each 300-W folder holds ``<stem>.pts`` with an image ``<stem>.jpg|.jpeg|.png|.bmp`` beside it. See docs/data.md.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flzoo.data.pts import read_pts
from flzoo.landmarks import NUM_POINTS



@dataclass(frozen=True)
class Dataset:
    """One subset: ``folder`` below the 300-W root (None: COFW's own layout, ``cofw_paths``), ``split`` train or
    test, ``label`` its row in the paper's Table 2, ``card_name`` its name on a model card."""
    name: str
    folder: tuple | None
    split: str
    label: str
    card_name: str


# The one table of subsets, in the paper's order (Table 1 for training, Table 2 rows for testing).
DATASETS = {d.name: d for d in (
    Dataset("afw", ("afw",), "train", "AFW", "AFW"),
    Dataset("helen_train", ("helen", "trainset"), "train", "Helen train", "Helen training set"),
    Dataset("lfpw_train", ("lfpw", "trainset"), "train", "LFPW train", "LFPW training set"),
    Dataset("helen_test", ("helen", "testset"), "test", "Helen", "Helen test set"),
    Dataset("lfpw_test", ("lfpw", "testset"), "test", "LFPW", "LFPW test set"),
    Dataset("300w_indoor", ("300W", "01_Indoor"), "test", "300-W indoor", "300-W indoor"),
    Dataset("300w_outdoor", ("300W", "02_Outdoor"), "test", "300-W outdoor", "300-W outdoor"),
    Dataset("ibug", ("ibug",), "test", "IBUG", "IBUG (300-W challenging set)"),
    Dataset("cofw", None, "test", "COFW", "COFW-68"),
)}
SUBSETS = tuple(DATASETS)
TRAIN_SUBSETS = tuple(name for name, d in DATASETS.items() if d.split == "train")
TEST_SUBSETS = tuple(name for name, d in DATASETS.items() if d.split == "test")
# results.json's row over all evaluated subsets
TOTAL = Dataset("total", None, "test", "Total", "All test sets evaluated")


def dataset(name):
    """The record of a subset name (``total`` included); an unknown name gets a record labelled by itself."""
    return DATASETS.get(name) or (TOTAL if name == "total" else Dataset(name, None, "test", name, name))
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")

# COFW-68: the benchmark's per-face annotations and Caltech's colour test images
COFW_ANNOTATION_DIRS = (("COFW68_Data", "test_annotations"), ("cofw68", "test_annotations"),
                        ("cofw", "test_annotations"), ("COFW68_Data",), ("cofw68",), ("cofw",))
COFW_IMAGES_FILE = "COFW_test_color.mat"


@dataclass
class Face:
    """One annotated face. ``points`` (68, 2) float32, 0-based photo pixels.

    ``image`` holds the pixels only for sources without image files (COFW); ``photo_id`` groups faces cut
    from one photo; ``occluded`` (68,) bool where the source marks occlusion (COFW)."""

    image_path: Path
    points: np.ndarray
    subset: str
    photo_id: str
    occluded: np.ndarray | None = None
    image: np.ndarray | None = None

    def __repr__(self):
        return f"Face({str(self.image_path)!r}, subset={self.subset!r}, photo_id={self.photo_id!r})"


def _child(folder: Path, name: str) -> Path | None:
    """``folder/name`` matched case-insensitively (official downloads differ in case), or None."""
    exact = folder / name
    if exact.is_dir():
        return exact
    if not folder.is_dir():
        return None
    for entry in folder.iterdir():
        if entry.is_dir() and entry.name.lower() == name.lower():
            return entry
    return None


def _folder(root: Path, parts) -> Path | None:
    folder = root
    for part in parts:
        folder = _child(folder, part)
        if folder is None:
            return None
    return folder


def subset_folders(root) -> dict:
    """``{subset: folder}`` for the 300-W subsets present below ``root`` (COFW excluded)."""
    root = Path(root)
    found = {}
    for subset, parts in ((n, d.folder) for n, d in DATASETS.items() if d.folder):
        folder = _folder(root, parts)
        if folder is not None:
            found[subset] = folder
    return found


def image_for(pts_path: Path) -> Path | None:
    """The image beside a ``.pts`` file (same stem), or None."""
    for ext in IMAGE_EXTENSIONS:
        for candidate in (pts_path.with_suffix(ext), pts_path.with_suffix(ext.upper())):
            if candidate.is_file():
                return candidate
    return None


# Faces cut from one photo end in _1, _2 ... after an id that ends in a digit (Helen/AFW "<id>_2",
# IBUG "image_003_1"); LFPW "image_0001" and 300-W "indoor_001" are whole photos.
_FACE_SUFFIX = re.compile(r"^(.*\d)_(\d{1,2})$")


def photo_id(subset: str, stem: str) -> str:
    """Group key of the photo a face was cut from, e.g. ``helen/100040721`` for ``100040721_2``."""
    match = _FACE_SUFFIX.match(stem)
    dataset = subset.split("_")[0]
    return f"{dataset}/{match.group(1) if match else stem}"


def present_subsets(root) -> list:
    """The subsets whose folders below ``root`` hold annotations (nothing is read or checked)."""
    root = Path(root)
    found = [s for s, folder in subset_folders(root).items() if any(Path(folder).glob("*.pts"))]
    if cofw_paths(root)[0] is not None:
        found.append("cofw")
    return [s for s in SUBSETS if s in found]


def discover(root, subsets=None, skip=()) -> dict:
    """``{subset: [Face, ...]}`` for every subset present below ``root`` (sorted by file name), or only for
    ``subsets``; faces whose ``.pts`` or image path is in ``skip`` are left out.

    Reads the annotations (not the images); a malformed ``.pts`` or a ``.pts`` without an image raises
    ``ValueError`` naming the file. ``flzoo.data.check.checked_faces`` checks everything first and reports all
    problems at once."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"data root {root} is not a folder (expected the 300-W layout, see docs/data.md)")
    skip = {Path(p) for p in skip}
    faces = {}
    for subset, folder in subset_folders(root).items():
        if subsets is not None and subset not in subsets:
            continue
        items = faces_in_folder(folder, subset, skip)
        if items:
            faces[subset] = items
    if subsets is None or "cofw" in subsets:
        cofw = [f for f in discover_cofw(root) if f.image_path not in skip]
        if cofw:
            faces["cofw"] = cofw
    return {s: faces[s] for s in SUBSETS if s in faces}



def points_by_image(root) -> dict:
    """``{image path (str): (68, 2) ground-truth points}`` over every subset below ``root``: how results files,
    which name faces by image path, find their annotations."""
    return {str(f.image_path): f.points for faces in discover(root).values() for f in faces}

def faces_in_folder(folder, subset="folder", skip=()) -> list:
    """The faces of one folder of ``<stem>.pts`` + image pairs (sorted by name), labelled ``subset``; pairs
    whose ``.pts`` or image path is in ``skip`` are left out."""
    items = []
    for pts_path in sorted(Path(folder).glob("*.pts")):
        image_path = image_for(pts_path)
        if pts_path in skip or image_path in skip:
            continue
        if image_path is None:
            raise ValueError(f"{pts_path}: no image beside it (expected {pts_path.stem} with one of "
                             f"{', '.join(IMAGE_EXTENSIONS)})")
        items.append(Face(image_path, read_pts(pts_path), subset, photo_id(subset, pts_path.stem)))
    return items


def load_image(face) -> np.ndarray:
    """RGB uint8 ``(H, W, 3)`` pixels of a ``Face`` (or of an image path)."""
    if isinstance(face, Face):
        if face.image is not None:
            return face.image
        path = face.image_path
    else:
        path = Path(face)
    return read_image(path)


def read_image(path) -> np.ndarray:
    """Decode an image file to RGB uint8; ``ValueError`` naming the file when missing or not an image."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: image file not found")
    data = np.fromfile(str(path), dtype=np.uint8)  # imdecode also handles non-ASCII paths
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise ValueError(f"{path}: not a readable image (expected JPEG/PNG/BMP data)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def split_train_val(faces, val_fraction=0.1, seed=0):
    """Split TRAINING faces into ``(train, val)``, seeded, with all faces of one photo on the same side.

    Photos are shuffled (independently of the input order) and taken for validation until it holds
    ``round(val_fraction * len(faces))`` faces or just more; both lists keep the input order."""
    faces = list(faces)
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    test = sorted({f.subset for f in faces if f.subset in TEST_SUBSETS})
    if test:
        raise ValueError(f"split_train_val: validation comes from training data only; got test subsets {test}")
    groups = sorted({f.photo_id for f in faces})
    order = np.random.default_rng(seed).permutation(len(groups))
    sizes = {}
    for f in faces:
        sizes[f.photo_id] = sizes.get(f.photo_id, 0) + 1
    target = round(val_fraction * len(faces))
    val_ids, count = set(), 0
    for i in order:
        if count >= target:
            break
        val_ids.add(groups[i])
        count += sizes[groups[i]]
    train = [f for f in faces if f.photo_id not in val_ids]
    val = [f for f in faces if f.photo_id in val_ids]
    return train, val


def validation_faces(found):
    """The validation faces of a default recipe (every training subset of ``discover(root)``'s ``found``, 10%,
    seed 0): where the studies in tools/ choose defaults, so that no test set chooses them."""
    return split_train_val([f for s in TRAIN_SUBSETS for f in found.get(s, [])], 0.1, seed=0)[1]


# ---------------------------------------------------------------- COFW-68


def cofw_paths(root) -> tuple:
    """``(annotation folder, COFW_test_color.mat)`` of a COFW-68 copy below ``root``; either may be None."""
    root = Path(root)
    annotations = None
    for parts in COFW_ANNOTATION_DIRS:
        folder = _folder(root, parts)
        if folder is not None and any(folder.glob("*_points.mat")):
            annotations = folder
            break
    images = None
    candidates = [root]
    if annotations is not None:
        candidates = [annotations, annotations.parent, root]
    for name in ("cofw", "COFW", "COFW_color", "cofw68", "COFW68_Data"):
        candidates.append(root / name)
    for folder in candidates:
        if (folder / COFW_IMAGES_FILE).is_file():
            images = folder / COFW_IMAGES_FILE
            break
    return annotations, images


def _cofw_index(path: Path) -> int:
    stem = path.name[: -len("_points.mat")]
    if not stem.isdigit() or int(stem) < 1:
        raise ValueError(f"{path}: expected a name '<i>_points.mat' with i = 1, 2, ... (the COFW test index)")
    return int(stem)


def discover_cofw(root) -> list:
    """COFW-68 test faces, or [] when the annotations are absent. Annotations without the image file raise."""
    annotations, images_file = cofw_paths(root)
    if annotations is None:
        return []
    if images_file is None:
        raise ValueError(f"{annotations}: COFW-68 annotations found but no {COFW_IMAGES_FILE} (Caltech's COFW "
                         f"colour test images) in {annotations}, {annotations.parent} or {Path(root)}")
    files = sorted(annotations.glob("*_points.mat"), key=_cofw_index)
    images = read_cofw_images(images_file)
    faces = []
    for path in files:
        i = _cofw_index(path)
        if i > len(images):
            raise ValueError(f"{path}: face {i} but {images_file} holds only {len(images)} images")
        points, occluded = read_cofw_points(path)
        faces.append(Face(path, points, "cofw", f"cofw/{i}", occluded=occluded, image=images[i - 1]))
    return faces


def _load_mat(path: Path) -> dict:
    """Variables of a MATLAB file: v5 through scipy.io, v7.3 (HDF5) through h5py (arrays transposed back)."""
    import scipy.io

    try:
        return {k: v for k, v in scipy.io.loadmat(str(path)).items() if not k.startswith("__")}
    except NotImplementedError:  # "Please use HDF reader for matlab v7.3 files"
        pass
    except Exception as err:
        if not _is_hdf5(path):
            raise ValueError(f"{path}: not a readable MATLAB .mat file ({err})") from None
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return {k: np.asarray(v).T for k, v in f.items()
                    if isinstance(v, h5py.Dataset) and not k.startswith("#")}
    except OSError as err:
        raise ValueError(f"{path}: not a readable MATLAB .mat file ({err})") from None


def _is_hdf5(path: Path) -> bool:
    """MATLAB v7.3 files are HDF5 behind a 512-byte text header (an HDF5 user block)."""
    signature = b"\x89HDF\r\n\x1a\n"
    with open(path, "rb") as f:
        head = f.read(520)
    return head[:8] == signature or head[512:520] == signature


def read_cofw_points(path) -> tuple:
    """One COFW-68 ``<i>_points.mat``: ``Points`` 68x2 (1-based x, y) and ``Occ`` 68x1 (1 = occluded).

    Returns 0-based float32 points ``(68, 2)`` and a bool ``(68,)`` occlusion mask."""
    path = Path(path)
    mat = _load_mat(path)
    for name in ("Points", "Occ"):
        if name not in mat:
            raise ValueError(f"{path}: missing variable {name!r} (found {sorted(mat)})")
    points = np.asarray(mat["Points"], dtype=np.float64)
    occ = np.asarray(mat["Occ"]).reshape(-1)
    if points.shape != (NUM_POINTS, 2) or not np.all(np.isfinite(points)):
        raise ValueError(f"{path}: Points must be {NUM_POINTS}x2 finite numbers, got shape {points.shape}")
    if occ.shape != (NUM_POINTS,):
        raise ValueError(f"{path}: Occ must hold {NUM_POINTS} values, got shape {np.asarray(mat['Occ']).shape}")
    return (points - 1.0).astype(np.float32), occ.astype(bool)


def _open_hdf5(path: Path):
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path}: not a readable MATLAB v7.3 (HDF5) file ({err})") from None


def read_cofw_images(path) -> list:
    """The ``IsT`` cell of Caltech's ``COFW_test_color.mat`` as RGB uint8 arrays (grey images made RGB)."""
    path = Path(path)
    if _is_hdf5(path):
        import h5py

        with _open_hdf5(path) as f:
            if "IsT" not in f:
                raise ValueError(f"{path}: missing the cell 'IsT' of test images (found {sorted(f.keys())})")
            refs = np.asarray(f["IsT"]).reshape(-1)
            # MATLAB stores column-major: an H x W x 3 image reads back as (3, W, H)
            raw = [np.asarray(f[ref]).T for ref in refs]
    else:
        mat = _load_mat(path)
        if "IsT" not in mat:
            raise ValueError(f"{path}: missing the cell 'IsT' of test images (found {sorted(mat)})")
        raw = [np.asarray(a) for a in np.asarray(mat["IsT"]).reshape(-1)]
    images = []
    for i, a in enumerate(raw, start=1):
        if a.ndim == 2:
            a = np.repeat(a[:, :, None], 3, axis=2)
        if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
            raise ValueError(f"{path}: IsT{{{i}}} must be an HxW or HxWx3 uint8 image, got {a.dtype} {a.shape}")
        images.append(np.ascontiguousarray(a))
    return images


def points_outside(points, width, height) -> float:
    """How far (pixels) the farthest point lies outside the image's pixel area; 0 when all are inside."""
    pts = np.asarray(points, dtype=np.float64)
    dx = np.maximum(-0.5 - pts[:, 0], pts[:, 0] - (width - 0.5))
    dy = np.maximum(-0.5 - pts[:, 1], pts[:, 1] - (height - 0.5))
    return float(np.hypot(np.maximum(dx, 0.0), np.maximum(dy, 0.0)).max())
