"""iBUG ``.pts`` landmark files: 1-based on disk, 0-based float32 (x, y) in memory.

This is the only module that adds or subtracts the 1 of the Matlab convention."""

from pathlib import Path

import numpy as np

from flzoo.landmarks import NUM_POINTS


def read_pts(path) -> np.ndarray:
    """Read a ``.pts`` file into a ``(68, 2)`` float32 array of 0-based pixel coordinates.

    The ``version`` / ``n_points`` / ``{`` header is optional (some copies have none); ``}`` closes the list.
    Anything else raises ``ValueError`` naming the file and the line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not a text .pts file ({err})") from None
    points, declared, declared_line, closed = [], None, 0, False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        where = f"{path}:{number}"
        if closed:
            raise ValueError(f"{where}: unexpected {line!r} after the closing '}}'")
        low = line.lower()
        if low.startswith("version"):
            continue
        if low.startswith("n_points"):
            value = line.split(":", 1)[-1].strip()
            if not value.isdigit():
                raise ValueError(f"{where}: n_points must be an integer, got {value!r}")
            declared, declared_line = int(value), number
            continue
        if line == "{":
            continue
        if line == "}":
            closed = True
            continue
        fields = line.split()
        if len(fields) != 2:
            raise ValueError(f"{where}: expected two numbers 'x y', got {line!r}")
        try:
            x, y = float(fields[0]), float(fields[1])
        except ValueError:
            raise ValueError(f"{where}: expected two numbers 'x y', got {line!r}") from None
        if not (np.isfinite(x) and np.isfinite(y)):
            raise ValueError(f"{where}: point {len(points)} is not finite: {line!r}")
        points.append((x, y))
    if declared is not None and declared != NUM_POINTS:
        raise ValueError(f"{path}:{declared_line}: n_points is {declared}, expected {NUM_POINTS}")
    if len(points) != NUM_POINTS:
        raise ValueError(f"{path}: has {len(points)} points, expected {NUM_POINTS}")
    return (np.asarray(points, dtype=np.float64) - 1.0).astype(np.float32)


def write_pts(path, points) -> None:
    """Write ``(68, 2)`` 0-based points as an iBUG ``.pts`` file (1-based, header always written)."""
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (NUM_POINTS, 2):
        raise ValueError(f"{path}: points have shape {points.shape}, expected ({NUM_POINTS}, 2)")
    if not np.all(np.isfinite(points)):
        raise ValueError(f"{path}: points contain NaN or infinity")
    lines = ["version: 1", f"n_points:  {NUM_POINTS}", "{"]
    # 6 decimals keeps float32 positions exact to well below 1e-4 px.
    lines += [f"{x + 1.0:.6f} {y + 1.0:.6f}" for x, y in points]
    lines.append("}")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
