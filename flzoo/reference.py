"""The figures flzoo is measured against, in one place: the paper's Table 2 and dlib's ERT on this data.

``PAPER_NME``: the paper's Table 2 (NME, 68 points; its VGG19-FCN at 224 px trained on 3,148 faces; its dlib
column leaves out the faces dlib's detector missed), test set -> column (a variant name or ``"dlib"``). Its Total
row mixes all its test sets, COFW included, so it is left out: no flzoo Total covers the same faces.
``DLIB_MEASURED``: dlib 19/20's ERT 68-point model with its own HOG detector, every face of flzoo's copy of the
data (the ground-truth box where the detector missed one), as NME / AUC@0.08 / FR@0.08. Both: docs/paper.md.
"""

_PAPER_COLUMNS = ("dlib", "direct", "cascaded", "distribution", "heatmap_reg", "pwc", "pwc_disc", "hybrid",
                  "hybrid_disc")
PAPER_NME = {subset: dict(zip(_PAPER_COLUMNS, row)) for subset, row in (
    ("helen_test", (0.0298, 0.0356, 0.0367, 0.0337, 0.0353, 0.0334, 0.0336, 0.0315, 0.0312)),
    ("lfpw_test", (0.0356, 0.0359, 0.0360, 0.0347, 0.0371, 0.0356, 0.0359, 0.0336, 0.0337)),
    ("300w_indoor", (0.0677, 0.0495, 0.0520, 0.0508, 0.0597, 0.0499, 0.0505, 0.0481, 0.0486)),
    ("300w_outdoor", (0.0640, 0.0500, 0.0516, 0.0503, 0.0586, 0.0487, 0.0492, 0.0470, 0.0473)),
    ("ibug", (0.0594, 0.0643, 0.0678, 0.0700, 0.0812, 0.0656, 0.0663, 0.0637, 0.0639)),
)}

DLIB_MEASURED = {"helen_test": {"nme": 0.0274, "auc": 0.673, "fr": 0.018}}

__all__ = ["PAPER_NME", "DLIB_MEASURED"]
