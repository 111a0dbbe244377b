"""Training recipes: the schema, loading, ``--set`` overrides and validation.

A recipe is a YAML mapping of sections (``model``, ``data``, ``augment``, ``train``, ``distribute``, ``output``)
plus ``name`` and ``seed``. Every key has a type, an allowed range or set of values and a default; the defaults
are the paper's settings, so a paper recipe only has to name its variant. Validation happens before any heavy
import or data loading, and every error names the key, the value and what is allowed.

Pure Python + PyYAML: importing this module imports no Keras.
"""

import copy
import difflib
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

# Training may only read the paper's training subsets: validation is carved from them (never a test set).
from flzoo.data.crop import CENTRES
from flzoo.data.datasets import TRAIN_SUBSETS
from flzoo.models import BACKBONES, VARIANTS
from flzoo.models.backbones import BACKBONES as BACKBONE_TABLE
from flzoo.models.backbones import get_backbone

OPTIMIZERS = ("adam", "adamw", "sgd")

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


@dataclass(frozen=True)
class Key:
    """One recipe key: its type ("int", "float", "str", "bool", "list", "dict", "jit"), default and limits."""

    kind: str
    default: object
    doc: str
    choices: tuple = None
    min: float = None
    max: float = None
    min_open: bool = False  # True: the value must be strictly greater than ``min``
    nullable: bool = False


SCHEMA = {
    "name": Key("str", None, "run name (default: the recipe file's stem)", nullable=True),
    "seed": Key("int", 0, "seed for weights, data order, augmentation and the train/val split", min=0),
    "model.variant": Key("str", None, "which paper model", choices=VARIANTS),
    "model.backbone": Key("str", "vgg19_fcn", "paper VGG19-FCN, the CPU-sized lite backbone or an ImageNet one",
                          choices=BACKBONES),
    "model.pretrained": Key("str", None, "'imagenet': start the backbone from its ImageNet weights (backbones "
                            "that have them, see flzoo.models.backbones); null: random initialisation",
                            choices=("imagenet",), nullable=True),
    "model.input_size": Key("int", None, "square input crop side in pixels (null: the variant's default, "
                            "224 for vgg19_fcn, 128 for lite, 112 for cascaded)", min=16, max=1024, nullable=True),
    "model.options": Key("dict", {}, "extra keyword arguments for flzoo.models.build (e.g. decoding, beta)"),
    "data.root": Key("str", None, "300-W folder (null: $FLZOO_300W or ../shared/data/300w)", nullable=True),
    "data.subsets": Key("list", list(TRAIN_SUBSETS), "training subsets", choices=TRAIN_SUBSETS),
    "data.val_fraction": Key("float", 0.1, "share of training photos held out for validation",
                             min=0.0, max=0.5, min_open=True),
    "data.crop_scale": Key("float", 1.3, "crop side over the landmark box's longer side (the crop protocol, "
                           "saved in the model's config.json for inference)", min=0.0, min_open=True),
    "data.crop_centre": Key("str", "box", "crop centre: the landmark box midpoint or the points' centroid",
                            choices=CENTRES),
    "data.max_faces": Key("int", None, "use at most this many training faces (smoke runs)", min=1, nullable=True),
    "data.max_val_faces": Key("int", None, "validate on at most this many faces", min=1, nullable=True),
    "augment.enabled": Key("bool", True, "augment training crops (per sample)"),
    "augment.rotation": Key("float", 30.0, "rotation drawn from U(-r, r) degrees", min=0.0, max=180.0),
    "augment.scale_min": Key("float", 0.6, "smallest face scale factor", min=0.1, max=2.0),
    "augment.scale_max": Key("float", 1.0, "largest face scale factor", min=0.1, max=2.0),
    "augment.flip": Key("bool", False, "random horizontal mirror (with the 68-point permutation)"),
    "augment.shift": Key("float", 0.0, "std of the crop-centre offset per axis, as a fraction of the crop side "
                         "(detector-box jitter; 0: off)", min=0.0, max=0.5),
    "augment.photometric": Key("float", 0.0, "brightness / contrast / saturation jitter strength (0: off)",
                               min=0.0, max=0.9),
    "train.batch_size": Key("int", 16, "global batch size (split across devices)", min=1, max=4096),
    "train.optimizer": Key("str", "adam", "optimizer (the paper: Adam)", choices=OPTIMIZERS),
    "train.learning_rate": Key("float", 1e-4, "learning rate", min=0.0, max=1.0, min_open=True),
    "train.lr_schedule": Key("str", "constant", "'constant' (the paper) or 'cosine' (decay to 1% at max_steps)",
                             choices=("constant", "cosine")),
    "train.max_steps": Key("int", 200_000, "stop after this many steps at the latest", min=1),
    "train.val_every": Key("int", 1000, "validate every N steps", min=1),
    "train.patience": Key("int", 10, "stop after N validations without a better val NME (null: never)",
                          min=1, nullable=True),
    "train.checkpoint_every": Key("int", 1000, "write a resumable checkpoint every N steps", min=1),
    "train.keep_checkpoints": Key("int", 2, "how many recent checkpoints to keep", min=1, max=100),
    "train.jit_compile": Key("jit", "auto", "'auto' (off on TensorFlow, where XLA is slower on CPU), true, false"),
    "train.run_eagerly": Key("bool", False, "run steps without tracing/compiling (debugging, smoke tests)"),
    "train.precision": Key("str", "float32", "'float32' or 'mixed_bfloat16' (bf16 compute, float32 variables and "
                           "losses; for GPUs with bf16 units)", choices=("float32", "mixed_bfloat16")),
    "train.data_workers": Key("int", 1, "threads building the next training batches (batches stay a function "
                              "of the step, so the data do not change)", min=1, max=64),
    "train.max_seconds": Key("int", None, "stop this process's training before this many seconds with a "
                             "checkpoint (the run is not finished: --resume continues it); null: no limit",
                             min=1, nullable=True),
    "distribute.enabled": Key("bool", False, "data-parallel training over all (or `devices`) local devices"),
    "distribute.devices": Key("int", None, "number of devices to use (null: all)", min=1, nullable=True),
    "output.overlays": Key("int", 4, "validation faces drawn to overlays/*.png at each new best", min=0, max=64),
}

SECTIONS = sorted({k.split(".")[0] for k in SCHEMA if "." in k})


class RecipeError(ValueError):
    """A recipe or override that does not fit the schema; the message names the key and what is allowed."""


def _allowed(key):
    spec = SCHEMA[key]
    if key == "data.subsets":
        text = "a list of " + ", ".join(repr(c) for c in spec.choices) + " (training subsets only: validation " \
               "is carved from them and test sets are never used in training)"
    elif spec.choices and spec.kind == "list":
        text = "a list of " + ", ".join(repr(c) for c in spec.choices)
    elif spec.choices:
        text = "one of " + ", ".join(repr(c) for c in spec.choices)
    elif spec.kind == "jit":
        text = "'auto', true or false"
    elif spec.kind in ("int", "float"):
        text = "an integer" if spec.kind == "int" else "a number"
        if spec.min is not None:
            text += f" {'>' if spec.min_open else '>='} {spec.min:g}"
        if spec.max is not None:
            text += f" and <= {spec.max:g}"
    elif spec.kind == "dict":
        text = "a mapping"
    else:
        text = {"str": "a string", "bool": "true or false", "list": "a list"}[spec.kind]
    return text + (" or null" if spec.nullable else "")


def check_value(key, value, where="recipe"):
    """Return ``value`` converted to the key's type, or raise RecipeError naming key, value and what is allowed."""
    if key not in SCHEMA:
        raise RecipeError(_unknown_message(key, where))
    spec = SCHEMA[key]

    def fail():
        raise RecipeError(f"{where}: {key} = {value!r} is not allowed; expected {_allowed(key)}")

    if value is None:
        if spec.nullable:
            return None
        fail()
    kind = spec.kind
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            fail()
    elif kind == "float":
        # PyYAML reads `1e-4` (no dot) as a string: accept number-looking strings, refuse any other text.
        if isinstance(value, str) and _NUMBER.match(value.strip()):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail()
        value = float(value)
    elif kind == "str":
        if not isinstance(value, str):
            fail()
    elif kind == "bool":
        if not isinstance(value, bool):
            fail()
    elif kind == "jit":
        if value != "auto" and not isinstance(value, bool):
            fail()
    elif kind == "list":
        if not isinstance(value, list) or not value:
            fail()
        if spec.choices and any(v not in spec.choices for v in value):
            fail()
        if len(set(value)) != len(value):
            raise RecipeError(f"{where}: {key} = {value!r} lists a value twice")
        value = list(value)
    elif kind == "dict":
        if not isinstance(value, dict) or any(not isinstance(k, str) for k in value):
            fail()
        value = copy.deepcopy(value)
    if kind in ("int", "float"):
        if spec.min is not None and (value < spec.min or (spec.min_open and value == spec.min)):
            fail()
        if spec.max is not None and value > spec.max:
            fail()
    if spec.choices and kind != "list" and value not in spec.choices:
        fail()
    return value


def _unknown_message(key, where):
    near = difflib.get_close_matches(key, list(SCHEMA) + SECTIONS, n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    section = key.split(".")[0]
    same = [k for k in SCHEMA if k.split(".")[0] == section and "." in k]
    allowed = ", ".join(same) if same else "sections " + ", ".join(SECTIONS) + ", name, seed"
    return f"{where}: unknown key {key!r}{hint}; allowed: {allowed}"


def _flatten(mapping, where):
    flat = {}
    for top, value in mapping.items():
        if not isinstance(top, str):
            raise RecipeError(f"{where}: key {top!r} is not a string")
        if top in SECTIONS:
            if not isinstance(value, dict):
                raise RecipeError(f"{where}: section {top!r} must be a mapping of keys, got {value!r}")
            for sub, subvalue in value.items():
                flat[f"{top}.{sub}"] = subvalue
        else:
            flat[top] = value
    return flat


def _check_all(flat, where):
    out = {key: copy.deepcopy(spec.default) for key, spec in SCHEMA.items()}
    for key, value in flat.items():
        out[key] = check_value(key, value, where)
    return out


def _check_cross(flat, where):
    """Constraints that involve more than one key."""
    if flat["model.variant"] is None:
        raise RecipeError(f"{where}: model.variant is required; expected one of {', '.join(VARIANTS)}")
    if flat["model.pretrained"] and get_backbone(flat["model.backbone"]).pretrained is None:
        have = ", ".join(name for name, b in BACKBONE_TABLE.items() if b.pretrained)
        raise RecipeError(f"{where}: model.pretrained = {flat['model.pretrained']!r} needs a backbone with "
                          f"ImageNet weights ({have}); model.backbone = {flat['model.backbone']!r} has none")
    if flat["augment.scale_min"] > flat["augment.scale_max"]:
        raise RecipeError(f"{where}: augment.scale_min = {flat['augment.scale_min']} is larger than "
                          f"augment.scale_max = {flat['augment.scale_max']}; expected scale_min <= scale_max")
    devices = flat["distribute.devices"]
    if flat["distribute.enabled"] and devices and flat["train.batch_size"] % devices:
        raise RecipeError(f"{where}: train.batch_size = {flat['train.batch_size']} does not split over "
                          f"distribute.devices = {devices}; expected a multiple of the device count")


def parse_override(text):
    """``key=value`` (value in YAML syntax) -> (key, value). ``model.options.NAME=value`` sets one option."""
    if "=" not in text:
        raise RecipeError(f"--set {text!r}: expected key=value, e.g. train.max_steps=100")
    key, raw = text.split("=", 1)
    key = key.strip()
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise RecipeError(f"--set {text!r}: the value is not valid YAML ({exc})") from None
    return key, value


def resolve(data, overrides=(), source="recipe", default_name=None):
    """Validate a recipe mapping plus ``--set`` overrides; return the full nested recipe with defaults filled in."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: expected a YAML mapping of sections, got {type(data).__name__}")
    flat = _check_all(_flatten(data, source), source)
    for text in overrides:
        key, value = parse_override(text)
        where = f"--set {text}"
        if key.startswith("model.options."):
            name = key[len("model.options."):]
            if not name:
                raise RecipeError(f"{where}: expected model.options.NAME=value")
            flat["model.options"] = {**flat["model.options"], name: value}
        else:
            flat[key] = check_value(key, value, where)
    if flat["name"] is None:
        flat["name"] = default_name or flat["model.variant"] or "run"
    _check_cross(flat, source)
    return nest(flat)


def nest(flat):
    out = {}
    for key, value in flat.items():
        if "." in key:
            section, sub = key.split(".", 1)
            out.setdefault(section, {})[sub] = value
        else:
            out[key] = value
    # Top-level keys first, then sections in schema order: a resolved recipe reads like a written one.
    return {k: out[k] for k in ("name", "seed")} | {k: out[k] for k in out if k not in ("name", "seed")}


def flatten(recipe):
    return _flatten(recipe, "recipe")


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise RecipeError(f"key {key!r} is given twice in one section: lines {seen[key] + 1} and "
                                  f"{key_node.start_mark.line + 1}; keep one")
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def load(path, overrides=()):
    """Read and validate the recipe at ``path`` (plus ``--set`` overrides)."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe file {path} does not exist")
    try:
        data = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)
    except RecipeError as exc:
        raise RecipeError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML ({exc})") from None
    return resolve(data, overrides, source=str(path), default_name=path.stem)


def dump(recipe):
    return yaml.safe_dump(recipe, sort_keys=False, default_flow_style=False)


# Keys that change how fast or how long one process trains, not what is trained: a resume may change them.
RESUMABLE_CHANGES = ("data.root", "train.data_workers", "train.max_seconds")


def differences(a, b, ignore=RESUMABLE_CHANGES):
    """Keys whose values differ between two resolved recipes (used to refuse resuming a different run). A key
    that one of them lacks (a run folder written before the key existed) counts as its default."""
    fa, fb = flatten(a), flatten(b)

    def get(flat, k):
        return flat[k] if k in flat else (SCHEMA[k].default if k in SCHEMA else None)

    return sorted(k for k in set(fa) | set(fb) if k not in ignore and get(fa, k) != get(fb, k))
