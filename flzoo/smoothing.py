"""Temporal smoothing of landmarks: the One-Euro filter (Casiez, Roussel and Vogel, CHI 2012).

A first-order low-pass filter whose cutoff rises with the signal's speed: at rest the cutoff is ``min_cutoff``
(Hz) and jitter is removed; when the points move, the cutoff grows by ``beta`` per unit of (low-passed) speed,
so the lag stays small. Speeds are measured in face sizes per second (the point's speed over the face's
outer-eye-corner distance), so one ``beta`` serves faces of any size in the frame.
"""

import math

import numpy as np

# Defaults chosen on the clips of tools/make_test_video.py (docs/video.md "Smoothing"): the jitter about halved at a
# lag under one frame.
MIN_CUTOFF = 1.0  # Hz
BETA = 3.0  # cutoff gain per face size / s of speed
D_CUTOFF = 1.0  # Hz, for the speed estimate


def _alpha(cutoff, dt):
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One-Euro filter of an array signal (e.g. ``(68, 2)`` points); ``filter(x, dt, scale)`` returns the
    smoothed value. ``scale``: the unit speeds are measured in (default 1); ``dt``: seconds since the last
    sample (> 0). The first sample passes through unchanged."""

    def __init__(self, min_cutoff=MIN_CUTOFF, beta=BETA, d_cutoff=D_CUTOFF):
        for name, value, zero_ok in (("min_cutoff", min_cutoff, False), ("beta", beta, True),
                                     ("d_cutoff", d_cutoff, False)):
            number = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
            if not number or value < 0 or (value == 0 and not zero_ok):
                raise ValueError(f"{name}={value!r}: expected a number {'>=' if zero_ok else '>'} 0")
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
        self.x = self.dx = None

    def reset(self):
        self.x = self.dx = None

    def filter(self, x, dt, scale=1.0):
        x = np.asarray(x, np.float64)
        if self.x is None or self.x.shape != x.shape or not np.all(np.isfinite(self.x)):
            self.x, self.dx = x.copy(), np.zeros_like(x)
            return x.copy()
        if not dt > 0:
            raise ValueError(f"OneEuroFilter: dt={dt!r}; expected seconds > 0 between samples")
        dx = (x - self.x) / dt / max(float(scale), 1e-9)
        self.dx = self.dx + _alpha(self.d_cutoff, dt) * (dx - self.dx)
        # one speed per point (its x and y together), so a point's two coordinates share a cutoff
        speed = np.linalg.norm(self.dx, axis=-1, keepdims=True) if x.ndim > 1 else np.abs(self.dx)
        cutoff = self.min_cutoff + self.beta * speed
        a = _alpha(cutoff, dt)  # per point: cutoff is an array
        self.x = self.x + a * (x - self.x)
        return self.x.copy()


__all__ = ["OneEuroFilter", "MIN_CUTOFF", "BETA", "D_CUTOFF"]
