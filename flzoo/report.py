"""``results.json`` files, the paper-style tables and CED plots of ``flzoo eval``, and ``flzoo compare``."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from flzoo.data.datasets import SUBSETS, dataset
from flzoo.metrics import THRESHOLD, as_errors, auc, ced, failure_rate
from flzoo.reference import DLIB_MEASURED, PAPER_NME

_GENERIC_DIRS = ("best", "last", "latest", "final", "model", "checkpoints")


def _jsonable(obj):
    """NaN / infinity (e.g. an empty subset) become null: results.json stays strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_jsonable(v) for v in obj]
    return obj


RESULT_FIELDS = ("model", "boxes", "summary", "faces")


def load_results(path, required=RESULT_FIELDS):
    """Read a results.json (a file, or a folder holding one), checking the ``required`` fields (by default those
    compare needs)."""
    path = Path(path)
    file = path / "results.json" if path.is_dir() else path
    try:
        results = json.loads(file.read_text())
    except FileNotFoundError:
        raise ValueError(f"{file}: no such file; expected a results.json written by `flzoo eval`") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{file}: not valid JSON ({exc}); expected a results.json from `flzoo eval`") from None
    if not isinstance(results, dict):
        raise ValueError(f"{file}: expected a JSON object, a results.json from `flzoo eval`")
    for key in required:
        if key not in results:
            raise ValueError(f"{file}: field {key!r} is missing; expected a results.json from `flzoo eval`")
    return results


def _fmt(value, digits=4):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def _protocol(results):
    # results written before test-time flip existed have no "flip" field: they are the network alone
    flip = ("test-time flip (mirrored crop averaged in)" if results.get("flip")
            else "no flip (the network alone, as the paper measures)")
    if results["boxes"] == "gt":
        return f"boxes: ground truth (the paper's protocol: square crop from the GT landmarks); {flip}"
    how = ("scored from the ground-truth crop" if results.get("misses", "gt") == "gt"
           else "excluded from NME / AUC / FR")
    return f"boxes: face detector (faces the detector missed are {how}); {flip}"


def render_table(results, threshold=THRESHOLD):
    """``table.md`` for one evaluation: per subset and total, NME, eye NME, AUC@0.08, FR@0.08, n."""
    det = results["boxes"] == "detector"
    head = ["set", "n", "NME", "NME eyes", f"AUC@{threshold:g}", f"FR@{threshold:g}"]
    head += ["detection rate"] if det else []
    scored = any("confidence_auroc" in v for v in results["summary"].values())
    head += ["conf. AUROC (failure)", "NME, most confident 90%"] if scored else []
    lines = [
        f"# Evaluation of `{results['model']}`",
        "",
        f"{_protocol(results)}. NME = mean point error / ground-truth distance between the outer eye corners "
        "(points 36 and 45), in photo coordinates; eyes = the 12 eye anchors (points 36-47)."
        + (" conf. AUROC: how well the face confidence ranks successes above failures (NME > "
           f"{threshold:g}); NME of the 90% of faces with the highest confidence." if scored else ""),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]

    def row(name, s):
        cells = [name, str(s["n"]), _fmt(s["nme"]), _fmt(s["nme_eyes"]), _fmt(s["auc"]),
                 "–" if s["fr"] is None else f"{100 * s['fr']:.1f}%"]
        if det:
            dr = s.get("detection_rate")
            cells.append("–" if dr is None else f"{100 * dr:.1f}%")
        if scored:
            cells += [_fmt(s.get("confidence_auroc"), 3), _fmt(s.get("nme_confident90"))]
        return "| " + " | ".join(cells) + " |"

    for subset, s in results["summary"].items():
        name = f"**{dataset(subset).label}**" if subset == "total" else dataset(subset).label
        lines.append(row(name, s))
    for subset, split in results.get("occlusion", {}).items():
        lines.append(row(f"{dataset(subset).label} occluded", split["occluded"]))
        lines.append(row(f"{dataset(subset).label} non-occluded", split["non_occluded"]))
    return "\n".join(lines) + "\n"


def plot_ced(curves, path, title, threshold=THRESHOLD):
    """Save a CED plot: ``curves`` = ``{legend label: per-face NMEs}``; x from 0 to 0.1 with the AUC/FR
    threshold marked. Matplotlib's Agg backend: no display needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    styles = ["-", "--", "-.", ":"]
    for i, (label, nmes) in enumerate(curves.items()):
        e = as_errors(nmes)
        x, y = ced(e)
        mean = float(e.mean()) if e.size else None
        fr = failure_rate(e, threshold) if e.size else None
        text = (f"{label} (n {e.size}, NME {_fmt(mean)}, AUC {_fmt(auc(e, threshold), 3)}, "
                f"FR {'–' if fr is None else f'{100 * fr:.0f}%'})")
        if label == "Total":  # the summary curve stands out
            ax.plot(x, y, "-", color="black", linewidth=2.6, label=text)
        else:  # more than 10 curves cycle the colours: change the dash pattern too; occlusion splits dashed
            style = "--" if label.endswith("occluded") else styles[(i // 10) % len(styles)]
            ax.plot(x, y, style, linewidth=1.8, label=text)
    ax.axvline(threshold, color="grey", linewidth=1, linestyle=":")
    ax.set_xlim(0, 0.1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("NME (normalised by the outer-eye-corner distance)")
    ax.set_ylabel("fraction of faces")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8, title_fontsize=8,
              title=f"AUC@{threshold:g} (dotted line: the AUC / FR threshold)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _curves(results, key):
    """CED curves of one evaluation: one per subset, the occlusion split, and the total."""
    faces = [f for f in results["faces"] if f[key] is not None]
    curves = {}
    subsets = [s for s in results["summary"] if s != "total"]
    for s in subsets:
        curves[dataset(s).label] = [f[key] for f in faces if f["subset"] == s]
    for s in results.get("occlusion", {}):
        for flag, name in ((True, "occluded"), (False, "non-occluded")):
            curves[f"{dataset(s).label} {name}"] = [
                f[key] for f in faces if f["subset"] == s and f.get("occluded") is flag]
    if len(subsets) > 1 or not subsets:
        curves["Total"] = [f[key] for f in faces]
    return curves


def write_outputs(results, out_dir):
    """Write ``results.json``, ``table.md``, ``ced_68.png`` and ``ced_eyes.png`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(_jsonable(results), allow_nan=False) + "\n")
    (out / "table.md").write_text(render_table(results))
    name = f"{short_name(results['model'])}, {'GT' if results['boxes'] == 'gt' else 'detector'} boxes"
    plot_ced(_curves(results, "nme"), out / "ced_68.png", f"CED, 68 points: {name}")
    plot_ced(_curves(results, "nme_eyes"), out / "ced_eyes.png", f"CED, 12 eye anchors: {name}")
    return out


def short_name(model):
    """A model name for titles and columns: a registry name as is, a folder path by its last part (with the
    run folder's name for a run's ``best/``-like folder, and a staged preset's registry name)."""
    path = Path(str(model))
    if path.name in _GENERIC_DIRS and path.parent.name:
        return f"{path.parent.name}/{path.name}"
    # tools/bundle_run.py evaluates a bundled model <name> while it is staged as preset-<name>
    return path.name.removeprefix("preset-") or str(model)


def _column_names(runs):
    """One column name per run: the model name (its folder name for a path), made unique."""
    names = []
    for path, res in runs:
        name = short_name(res["model"])
        if res["boxes"] != "gt":
            name += " (detector)"
        names.append(name)
    for i, name in enumerate(names):
        if names.count(name) > 1:
            names[i] = f"{name} [{runs[i][0]}]"
    return names


def results_variant(results):
    """The paper variant a ``results.json`` evaluates: its ``variant`` field (``flzoo eval`` records it), else read
    from the model's name (``preset-pwc.mnv2``, ``runs/hybrid_seed1/best``, ``hybrid_disc``), else None."""
    from flzoo.aggregate import configuration
    from flzoo.models.variants import VARIANTS

    name = results.get("variant") or re.split(r"[. ]", configuration(results))[0]
    return name if name in VARIANTS else None


def compare_table(runs, metric="nme", paper=False):
    """The paper's Table 2: rows = test sets present in any run (paper order, then others, then Total),
    one column per run, the best value per row in bold when two or more runs have one (lowest NME / FR, highest
    AUC). ``paper`` adds dlib's column (measured here) and, for NME, the paper's figure of each column's variant
    under each test set (``flzoo.reference``)."""
    names = _column_names(runs) + (["dlib ERT (its own detector)"] if paper else [])
    present = list(dict.fromkeys(s for _, r in runs for s in r["summary"] if s != "total"))
    rows = [s for s in SUBSETS if s in present] + [s for s in present if s not in SUBSETS] + ["total"]
    lower_is_better = metric != "auc"
    fmt = (lambda v: f"{100 * v:.1f}%") if metric == "fr" else _fmt
    lines = ["| set | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for s in rows:
        vals = [r["summary"].get(s, {}).get(metric) for _, r in runs]
        vals += [DLIB_MEASURED.get(s, {}).get(metric)] if paper else []
        # compare the values as shown, so equal-looking cells are all marked best
        shown = [None if v is None or not math.isfinite(v) else fmt(v) for v in vals]
        numbers = [None if t is None else float(t.rstrip("%")) for t in shown]
        # the best of the runs; dlib's column (its own detector, another protocol) is shown, not ranked
        valid = [v for v in numbers[:len(runs)] if v is not None]
        best = (min(valid) if lower_is_better else max(valid)) if len(valid) > 1 else None
        cells = ["–" if t is None else f"**{t}**" if v == best and i < len(runs) else t
                 for i, (t, v) in enumerate(zip(shown, numbers))]
        lines.append(f"| {dataset(s).label} | " + " | ".join(cells) + " |")
        if paper and metric == "nme" and s in PAPER_NME:
            published = [PAPER_NME[s].get(results_variant(r)) for _, r in runs] + [PAPER_NME[s]["dlib"]]
            lines.append(f"| {dataset(s).label}, paper | " + " | ".join(_fmt(v) for v in published) + " |")
    return "\n".join(lines) + "\n"


def render_comparison(runs, paper=False):
    """Markdown for ``flzoo compare``: NME (Table 2 layout), eye NME, AUC@0.08 and FR@0.08 tables; ``paper``
    adds the paper's figures and dlib's (``compare_table``)."""
    names = _column_names(runs)
    parts = ["# Model comparison (the paper's Table 2 layout)", ""]
    for name, (path, res) in zip(names, runs):
        parts.append(f"- **{name}**: `{path}`; {_protocol(res)}")
    if paper:
        parts.append("- **dlib ERT (its own detector)**: dlib 19/20's 68-point ERT model with its HOG detector, "
                     "measured on this data (the ground-truth box where the detector missed a face; docs/paper.md)")
        parts += ["", "Rows \"<set>, paper\": the paper's Table 2 figure for the column's variant (its VGG19-FCN "
                  "at 224 px, trained on 3,148 faces; its dlib column leaves out the faces dlib's detector missed). "
                  "dlib's column is not ranked (its own detector's boxes, not ground-truth crops) and has no curve "
                  "in the CED plots (no per-face figures)."]
    subsets = {tuple(s for s in r["summary"] if s != "total") for _, r in runs}
    if len(subsets) > 1:
        parts += ["", "Note: the runs cover different test sets, so their Total rows are not comparable."]
    parts += ["", "Best per row in bold.", ""]
    for metric, title in (("nme", "NME, 68 points"), ("nme_eyes", "NME, 12 eye anchors"),
                          ("auc", "AUC@0.08 (higher is better)"), ("fr", "Failure rate @0.08")):
        parts += [f"## {title}", "", compare_table(runs, metric, paper)]
    return "\n".join(parts)


def find_results(path):
    """results.json files for ``flzoo compare``: PATH itself (a results.json), PATH/results.json (an eval
    folder), or PATH/eval*/results.json (a training run folder, as ``flzoo push`` reads it)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if (path / "results.json").is_file():
        return [path / "results.json"]
    found = sorted(path.glob("eval*/results.json"))
    if not found:
        raise ValueError(
            f"{path}: no results.json, {path / 'results.json'} or {path}/eval*/results.json; expected a folder "
            "written by `flzoo eval --out` (or a run folder holding one)"
        )
    return found


def write_comparison(runs, out_dir, paper=False):
    """Write ``comparison.md``, ``ced_68.png`` (every model, all faces: the paper's Figure 9) and
    ``ced_eyes.png`` into ``out_dir`` for ``runs`` = ``[(path, load_results(path)), ...]``; returns the Markdown.
    ``paper``: with the paper's and dlib's figures (``compare_table``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = render_comparison(runs, paper)
    (out / "comparison.md").write_text(text)
    names = _column_names(runs)
    for key, file, what in (("nme", "ced_68.png", "68 points"), ("nme_eyes", "ced_eyes.png", "12 eye anchors")):
        curves = {n: [f[key] for f in r["faces"] if f[key] is not None] for n, (_, r) in zip(names, runs)}
        plot_ced(curves, out / file, f"CED, {what}, all test faces")
    return text
