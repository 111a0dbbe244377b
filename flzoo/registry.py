"""The model zoo's one table: name -> what the model is and where its weights come from.

Weights come from a bundled folder ``flzoo/weights/<name>/`` (``model.safetensors`` + ``config.json``) or a
Hugging Face Hub repo at a pinned revision. Listing never downloads: for bundled models the parameter count and
measured NME are read from the bundled ``config.json`` (the one source of truth, written by ``save_model``);
Hub entries carry them in the table.
"""

import fnmatch
import json
from dataclasses import asdict, dataclass
from pathlib import Path

BUNDLED_DIR = Path(__file__).resolve().parent / "weights"

DEFAULT_MODEL = "hybrid_disc"  # the lite hybrid + discriminator: the best measured Helen NME (README)


@dataclass(frozen=True)
class Entry:
    name: str
    variant: str
    backbone: str
    input_size: int
    description: str
    hub_repo: str | None = None  # "org/name" when the weights live on the Hub
    hub_revision: str | None = None  # a commit hash or tag, pinned so a name always means the same weights
    params: int | None = None  # trainable parameters (bundled: read from config.json)
    nme: float | None = None  # measured NME (bundled: config.json "metrics")


_LITE = [
    ("direct", "direct regression of the 68 points (FC head)"),
    ("cascaded", "cascaded regression (DAN, three stages)"),
    ("distribution", "Gaussian heatmaps, spatial softmax + KL"),
    ("heatmap_reg", "Gaussian heatmaps + background, L2"),
    ("pwc", "pixel-wise classification, cross-entropy"),
    ("pwc_disc", "pixel-wise classification + shape discriminator"),
    ("hybrid", "pixel-wise classification + sub-pixel point regression"),
    ("hybrid_disc", "hybrid loss + shape discriminator"),
]

TABLE = {
    name: Entry(name=name, variant=name, backbone="lite", input_size=112 if name == "cascaded" else 128,
                description=f"lite backbone: {text}")
    for name, text in _LITE
}


def did_you_mean(name, known):
    """`` (did you mean 'x'?)`` for the closest of ``known``, or an empty string."""
    import difflib

    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def get_entry(name):
    if name not in TABLE:
        raise ValueError(f"model {name!r} is not in the flzoo registry{did_you_mean(name, TABLE)}; known: "
                         f"{', '.join(TABLE)} (or pass a model folder path or hf://ORG/NAME[@REVISION])")
    return TABLE[name]


def bundled_folder(name):
    return BUNDLED_DIR / name


def is_available(entry):
    """True when the weights can be had: the bundled files exist, or the entry names a Hub repo."""
    if entry.hub_repo:
        return True
    folder = bundled_folder(entry.name)
    return (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()


def source(entry):
    """Where the weights come from, in words."""
    if entry.hub_repo:
        return f"hf://{entry.hub_repo}@{entry.hub_revision or 'main'}"
    folder = bundled_folder(entry.name)
    state = "bundled" if is_available(entry) else "bundled, not yet present"
    return f"{state}: flzoo/weights/{folder.name}/"


def describe(entry):
    """The entry as a dict, with parameters, NME and input size filled from a bundled config.json."""
    info = asdict(entry)
    cfg_path = bundled_folder(entry.name) / "config.json"
    if not entry.hub_repo and cfg_path.is_file():
        try:
            cfg = json.loads(cfg_path.read_text())
        except (OSError, json.JSONDecodeError):
            cfg = {}
        info["params"] = (cfg.get("params") or {}).get("trainable", info["params"])
        info["input_size"] = cfg.get("input_size", info["input_size"])
        metrics = cfg.get("metrics") or {}
        info["nme"] = metrics.get("nme", info["nme"])  # a test-set NME; the trainer's val_nme is kept apart
        for key in ("nme_subset", "val_nme"):
            if key in metrics:
                info[key] = metrics[key]
    info["available"] = is_available(entry)
    info["source"] = source(entry)
    return info


def list_models(pattern="*"):
    """Entries (dicts) whose name matches the glob ``pattern``, in table order."""
    return [describe(e) for name, e in TABLE.items() if fnmatch.fnmatchcase(name, pattern)]


def resolve(name):
    """The local folder holding the weights of a registry name (downloads Hub entries through ``flzoo.hub``)."""
    entry = get_entry(name)
    if entry.hub_repo:
        from flzoo.hub import download

        return Path(download(entry.hub_repo, entry.hub_revision))
    if not is_available(entry):
        raise ValueError(f"model {name!r}: its weights are not bundled yet (expected "
                         f"{bundled_folder(name)}/config.json and model.safetensors); train one with "
                         f"flzoo-train and load its run folder's best/ by path, or pick another model "
                         f"(`flzoo list` shows which are available)")
    return bundled_folder(name)


__all__ = ["Entry", "TABLE", "DEFAULT_MODEL", "get_entry", "list_models", "resolve", "describe", "source",
           "is_available", "BUNDLED_DIR"]
