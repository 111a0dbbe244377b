"""The paper's eight models, one record each: what the network outputs, what it is trained against, which loss
terms it reports and how its output becomes points. Keras-free, so the registry, recipes and docs read it
cheaply; ``flzoo.models.build``, ``LandmarkModel``, ``decoding`` and ``losses`` act on these fields instead of
on variant names.

To add a variant: one record here; a new ``loss`` also needs its ``LOSS_TERMS`` entry and a branch in
``LandmarkModel._task_loss``.
"""

from dataclasses import dataclass

from flzoo.landmarks import NUM_POINTS


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    output: str  # "points" (B, 68, 2) | "stages" (B, stages, 68, 2), the last stage the prediction | "maps"
    target: str  # the maps the data pipeline makes (flzoo.data.targets): points | gaussian | heatmap_reg | pwc
    loss: str  # the detector loss (LandmarkModel._task_loss): a key of LOSS_TERMS
    scores: str | None = None  # maps -> landmark scores: spatial_softmax | regressed | class_softmax
    map_channels: int | None = None  # 68 landmark maps, plus background channel 0 where 69
    decoding: str = "subpixel"  # default decoding of the maps
    adversarial: bool = False  # trained against the shape discriminator
    input_size: int | None = None  # a fixed input size; None: the backbone's default

    @property
    def terms(self):
        """The loss terms reported each step (cascaded adds one per stage)."""
        return LOSS_TERMS[self.loss]


# the terms each detector loss reports
LOSS_TERMS = {"point": ("point",), "cascade": ("point",), "kl": ("kl",), "l2": ("l2",), "ce": ("ce",),
              "hybrid": ("ce", "point")}


_POINTS = dict(output="points", target="points", loss="point")
_PWC = dict(output="maps", target="pwc", scores="class_softmax", map_channels=NUM_POINTS + 1)

VARIANTS = {v.name: v for v in (
    Variant("direct", "direct regression of the 68 points (FC head)", **_POINTS),
    # DAN works at 112 px (its paper's size), whatever the backbone
    Variant("cascaded", "cascaded regression (DAN, three stages)", output="stages", target="points",
            loss="cascade", input_size=112),
    Variant("distribution", "Gaussian heatmaps, spatial softmax + KL", output="maps", target="gaussian",
            loss="kl", scores="spatial_softmax", map_channels=NUM_POINTS),
    Variant("heatmap_reg", "Gaussian heatmaps + background, L2", output="maps", target="heatmap_reg",
            loss="l2", scores="regressed", map_channels=NUM_POINTS + 1),
    Variant("pwc", "pixel-wise classification, cross-entropy", loss="ce", **_PWC),
    Variant("pwc_disc", "pixel-wise classification + shape discriminator", loss="ce", adversarial=True, **_PWC),
    # the local soft-argmax is the estimate the hybrid's point loss trains, so it decodes with it
    Variant("hybrid", "pixel-wise classification + sub-pixel point regression", loss="hybrid",
            decoding="soft_argmax", **_PWC),
    Variant("hybrid_disc", "hybrid loss + shape discriminator", loss="hybrid", decoding="soft_argmax",
            adversarial=True, **_PWC),
)}
ADVERSARIAL_TERMS = ("adv", "disc_loss", "disc_acc")


def get_variant(name):
    if name not in VARIANTS:
        raise ValueError(f"variant={name!r}: expected one of {', '.join(VARIANTS)}")
    return VARIANTS[name]


__all__ = ["Variant", "VARIANTS", "LOSS_TERMS", "ADVERSARIAL_TERMS", "get_variant"]
