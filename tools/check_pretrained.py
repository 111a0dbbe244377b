"""Top-5 ImageNet classes of scikit-image's ``chelsea`` (a cat) and ``coffee`` (a cup of coffee) photos through
each pretrained backbone's own ImageNet head, built from the converted weights: a converted network that
still knows ImageNet says cat and espresso.

    python tools/check_pretrained.py [BACKBONE ...]     # no argument: every pretrained backbone
"""

import sys


def main(argv):
    from skimage import data

    from flzoo.models.pretrained import PretrainedError, imagenet_top5, pretrained_backbones

    photos = {"chelsea": data.chelsea(), "coffee": data.coffee()}
    failed = False
    for backbone in argv or pretrained_backbones():
        try:
            tops = imagenet_top5(backbone, photos)
        except PretrainedError as err:
            print(f"{backbone}: {err}")
            failed = True
            continue
        for name, top in tops.items():
            classes = ", ".join(f"{index} {IMAGENET_NAMES.get(index, '?')} {p:.3f}" for index, p in top)
            print(f"{backbone:20s} {name:8s} {classes}")
    return 1 if failed else 0


# The ImageNet-1k classes these photos land on (indices of the standard class list).
IMAGENET_NAMES = {281: "tabby", 282: "tiger cat", 283: "Persian cat", 284: "Siamese cat", 285: "Egyptian cat",
                  287: "lynx", 728: "plastic bag", 904: "window screen", 782: "screen", 967: "espresso", 968: "cup",
                  925: "consomme", 809: "soup bowl", 504: "coffee mug", 960: "chocolate sauce", 969: "eggnog",
                  828: "strainer"}

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
