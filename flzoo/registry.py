"""The model zoo: ``<variant>.<tag>`` names -> what the model is and where its weights come from.

The table is built from what is there, not from a list in code: every bundled folder
``flzoo/presets/<variant>.<tag>/`` (``model.safetensors`` + ``config.json``, written by ``save_model``) is an
entry, its variant, backbone, input size, parameters and measured NME read from its ``config.json``.
``flzoo/presets/index.json`` adds what no folder can say: the best model per variant (what a bare variant name
such as ``hybrid_disc`` means), the default variant (``flzoo.load()``), and models that live on the Hugging Face
Hub at a pinned revision. Listing never downloads.
"""

import copy
import fnmatch
import functools
import json
from dataclasses import asdict, dataclass
from pathlib import Path

BUNDLED_DIR = Path(__file__).resolve().parent / "presets"
INDEX_FILE = "index.json"
MAX_BUNDLED_BYTES = 10_000_000  # a bundled weights file at most (the package stays small)


@dataclass(frozen=True)
class Entry:
    name: str  # "<variant>.<tag>"
    variant: str
    backbone: str
    input_size: int
    description: str
    hub_repo: str | None = None  # "org/name" when the weights live on the Hub
    hub_revision: str | None = None  # a commit hash or tag, pinned so a name always means the same weights
    params: int | None = None  # trainable parameters
    nme: float | None = None  # measured test-set NME (``nme_subset`` says which set)

    @property
    def tag(self):
        return self.name.partition(".")[2]


def _read_json(path):
    """A registry file's object. One ``flzoo.load`` asks for the same files several times (name checks, then the
    entry, then its description): each is parsed once per version on disk (path, mtime, size), and callers get
    their own copy."""
    try:
        stat = Path(path).stat()
    except OSError as err:
        raise ValueError(f"{path}: cannot read the registry file ({err})") from None
    return copy.deepcopy(_parse_json(str(path), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=256)
def _parse_json(path, mtime_ns, size):
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read the registry file ({err})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return value


def index():
    """``presets/index.json``: ``{"default": variant, "best": {variant: name}, "hub": {name: fields}}``."""
    return _read_json(BUNDLED_DIR / INDEX_FILE)


def _describe(variant, backbone, input_size):
    from flzoo.models.variants import VARIANTS

    known = VARIANTS.get(variant)
    return f"{backbone} {input_size} px: {known.description if known else variant}"


def _bundled_entry(folder):
    config = _read_json(folder / "config.json")
    build = config.get("build") or {}
    variant, backbone = build.get("variant"), build.get("backbone")
    if folder.name.partition(".")[0] != variant or "." not in folder.name:
        raise ValueError(f"{folder}: a preset folder is named <variant>.<tag> after the variant its config.json "
                         f"builds ({variant!r})")
    input_size = int(config.get("input_size") or build.get("input_size"))
    return Entry(name=folder.name, variant=variant, backbone=backbone, input_size=input_size,
                 description=_describe(variant, backbone, input_size),
                 params=(config.get("params") or {}).get("trainable"), nme=(config.get("metrics") or {}).get("nme"))


def table():
    """``{name: Entry}``: the bundled folders (sorted by variant order, then tag), then the index's Hub entries."""
    from flzoo.models.variants import VARIANTS

    order = {v: i for i, v in enumerate(VARIANTS)}
    folders = [p for p in BUNDLED_DIR.iterdir() if p.is_dir() and (p / "config.json").is_file()]
    entries = sorted((_bundled_entry(p) for p in folders), key=lambda e: (order.get(e.variant, len(order)), e.tag))
    for name, fields in (index().get("hub") or {}).items():
        size = int(fields["input_size"])
        entries.append(Entry(name=name, description=_describe(fields["variant"], fields["backbone"], size),
                             input_size=size, **{k: v for k, v in fields.items() if k != "input_size"}))
    return {e.name: e for e in entries}


def did_you_mean(name, known):
    """`` (did you mean 'x'?)`` for the closest of ``known``, or an empty string."""
    import difflib

    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def default_name():
    """The entry ``flzoo.load()`` gives: the best model of the index's default variant."""
    info = index()
    return info["best"][info["default"]]


def canonical_name(name):
    """An entry name from a full name (``hybrid_disc.lite``), a bare variant name (its best entry) or None (the
    default); ValueError naming what is known for anything else."""
    if name is None:
        return default_name()
    entries, best = table(), index().get("best") or {}
    if name in entries:
        return name
    if name in best:
        return best[name]
    known = known_names()
    raise ValueError(f"model {name!r} is not in the flzoo registry{did_you_mean(name, known)}; known: "
                     f"{', '.join(known)} (or pass a model folder path or hf://ORG/NAME[@REVISION])")


def known_names():
    """Every name ``canonical_name`` accepts: the bare variant names, then the full ``<variant>.<tag>`` ones."""
    return list(index().get("best") or {}) + list(table())


def get_entry(name):
    return table()[canonical_name(name)]


def bundled_folder(name):
    return BUNDLED_DIR / canonical_name(name)


def bundled_config(name):
    """The ``config.json`` (build, parameters, measured figures, training record) of the bundled entry ``name``, an
    exact entry name as ``table()`` keys it (no alias resolution: callers already hold the name)."""
    return _read_json(BUNDLED_DIR / name / "config.json")


def is_available(entry):
    """True when the weights can be had: the bundled files exist, or the entry names a Hub repo."""
    if entry.hub_repo:
        return True
    folder = BUNDLED_DIR / entry.name
    return (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()


def source(entry):
    """Where the weights come from, in words."""
    if entry.hub_repo:
        return f"hf://{entry.hub_repo}@{entry.hub_revision or 'main'}"
    state = "bundled" if is_available(entry) else "bundled, weights missing"
    return f"{state}: flzoo/presets/{entry.name}/"


def describe(entry):
    """The entry as a dict: its fields, tag, the measured figures of a bundled config.json, availability, source
    and which names mean it (``aliases``: the bare variant name where it is that variant's best)."""
    info = asdict(entry)
    info["tag"] = entry.tag
    if not entry.hub_repo and (BUNDLED_DIR / entry.name / "config.json").is_file():
        metrics = bundled_config(entry.name).get("metrics") or {}
        for key in ("nme_subset", "val_nme"):  # a test-set NME; the trainer's val_nme is kept apart
            if key in metrics:
                info[key] = metrics[key]
    best = index().get("best") or {}
    info["aliases"] = [variant for variant, name in best.items() if name == entry.name]
    info["default"] = entry.name == default_name()
    info["available"] = is_available(entry)
    info["source"] = source(entry)
    return info


def list_models(pattern="*"):
    """Entries (dicts) whose name, or a bare variant name meaning them, matches the glob ``pattern``."""
    return [describe(e) for name, e in table().items()
            if fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(e.variant, pattern)]


def resolve(name):
    """The local folder holding the weights of a registry name (downloads Hub entries through ``flzoo.hub``)."""
    entry = get_entry(name)
    if entry.hub_repo:
        from flzoo.hub import download

        return Path(download(entry.hub_repo, entry.hub_revision))
    if not is_available(entry):
        raise ValueError(f"model {name!r}: its weights are missing (expected {BUNDLED_DIR / entry.name}/"
                         f"model.safetensors); reinstall flzoo or pick another model (`flzoo list`)")
    return BUNDLED_DIR / entry.name


def is_name(text):
    """True when ``text`` is something ``canonical_name`` accepts (a full or bare registry name)."""
    return text in known_names()


__all__ = ["Entry", "table", "index", "default_name", "canonical_name", "known_names", "get_entry", "list_models",
           "resolve",
           "describe", "source", "is_available", "is_name", "bundled_config", "BUNDLED_DIR"]
