"""Several training runs of one configuration (different seeds): mean +/- std of the figures per test set, and
the paired comparison of two configurations face by face with a bootstrap interval (``flzoo compare``).

A run's configuration is its run folder's name without a ``_seed<N>`` / ``-seed<N>`` suffix (``pwc_seed2/best``
-> ``pwc``), plus ``(detector)`` for detector-box evaluations, so ``flzoo compare ../runs/*_seed*/eval_gt``
groups by itself. A bundled model's evaluation (``tools/bundle_run.py`` stages it as ``preset-<name>``) counts as
``<name>``: the bundled ``pwc.mnv2`` and the runs ``pwc.mnv2_seed1``, ``pwc.mnv2_seed2`` are one configuration.
"""

import json
import re
from pathlib import Path

import numpy as np

SEED_SUFFIX = re.compile(r"^(?P<config>.+?)(?:[_-]seed\d+)?$")
METRICS = ("nme", "auc", "fr")


def configuration(results):
    """The configuration name of one ``results.json`` dict (from its ``model`` path)."""
    from flzoo.report import short_name

    run = short_name(results["model"]).split("/")[0]
    name = SEED_SUFFIX.match(run).group("config")
    return name + ("" if results.get("boxes", "gt") == "gt" else " (detector)")


def group_runs(runs):
    """``{configuration: [(path, results), ...]}`` in first-seen order, from ``[(path, results), ...]``."""
    groups = {}
    for path, results in runs:
        groups.setdefault(configuration(results), []).append((path, results))
    return groups


def run_metrics(run_dir):
    """A run folder's ``metrics.json`` (written by ``flzoo-train``, copied by ``tools/record_run.py``) as a dict, or
    None where there is none; a ValueError naming the file when it is malformed or its ``best_val_nme`` is not a
    finite number."""
    file = Path(run_dir) / "metrics.json"
    try:
        metrics = json.loads(file.read_text())
    except FileNotFoundError:
        return None
    except OSError as err:
        raise ValueError(f"{file}: cannot read it ({err.strerror or err})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{file}: not a metrics.json written by flzoo-train ({err})") from None
    if not isinstance(metrics, dict):
        raise ValueError(f"{file}: not a metrics.json written by flzoo-train (a JSON object)")
    value = metrics.get("best_val_nme")
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not np.isfinite(value)):
        raise ValueError(f"{file}: best_val_nme is {value!r}, expected a finite number")
    return metrics


def validation_nme(results_path):
    """The best validation NME of the run an evaluation belongs to (the run folder holding the eval folder), or
    None where there is none (an evaluation written elsewhere, or a run stopped before its first validation)."""
    metrics = run_metrics(Path(results_path).parent.parent)
    return None if metrics is None else metrics.get("best_val_nme")


def mean_std(values):
    """``(mean, sample std or None for one value, n)``."""
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    if v.size == 0:
        return None, None, 0
    return float(v.mean()), (float(v.std(ddof=1)) if v.size > 1 else None), int(v.size)


def face_nmes(results, subset):
    """``{(image, k): NME}`` of one run's faces in ``subset`` (``k`` numbers the faces of one photo)."""
    out, seen = {}, {}
    for face in results["faces"]:
        if face["subset"] != subset or face.get("nme") is None:
            continue
        k = seen.get(face["image"], 0)
        seen[face["image"]] = k + 1
        out[(face["image"], k)] = face["nme"]
    return out


def paired_difference(a_runs, b_runs, subset, resamples=10_000, seed=0):
    """NME of configuration A minus B, face by face: each face's NME averaged over the runs of its
    configuration, then the mean difference over the faces all runs scored, with a 95% percentile bootstrap
    interval over seeds and faces (``resamples`` draws, seeded): each draw resamples each configuration's runs and
    then the faces, so the interval holds the spread between seeds as well as between faces (with one run per
    configuration it is the bootstrap over faces alone). Returns ``{"mean", "low", "high", "faces"}``."""
    per_run = [face_nmes(r, subset) for r in list(a_runs) + list(b_runs)]
    common = sorted(set.intersection(*(set(p) for p in per_run))) if per_run else []
    if not common:
        raise ValueError(f"no face of {subset!r} is scored in every run of both configurations")
    nmes = np.asarray([[p[f] for f in common] for p in per_run])
    a, b = nmes[:len(a_runs)], nmes[len(a_runs):]
    rng = np.random.default_rng(seed)

    def resampled_means(runs):  # (resamples, faces): each face's mean over runs drawn with replacement
        draws = rng.integers(0, len(runs), (resamples, len(runs)))
        weights = (draws[:, :, None] == np.arange(len(runs))).mean(axis=1)  # each run's share of a draw
        return weights @ runs

    diffs = resampled_means(a) - resampled_means(b)
    faces = rng.integers(0, len(common), (resamples, len(common)))
    means = np.take_along_axis(diffs, faces, axis=1).mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"mean": float((a.mean(axis=0) - b.mean(axis=0)).mean()), "low": float(low), "high": float(high),
            "faces": len(common)}


def render_aggregate(groups, pairs=(), paper=False):
    """Markdown, from ``group_runs``' groups: per configuration and test set, mean +/- std (n runs) of NME,
    AUC@0.08 and FR@0.08, and each run's best validation NME where its run folder has one (what chose its
    checkpoint, and what may choose between configurations without looking at a test set); then each ``(A, B)``
    of ``pairs`` as the paired NME difference A - B with its bootstrap interval. ``paper`` adds the paper's
    Table 2 NME of each configuration's variant, and its A - B (``flzoo.reference``)."""
    from flzoo.data.datasets import dataset
    from flzoo.reference import PAPER_NME
    from flzoo.report import results_variant

    validation = {name: [validation_nme(path) for path, _ in members] for name, members in groups.items()}
    results_of = {name: [results for _, results in members] for name, members in groups.items()}
    with_validation = any(v is not None for values in validation.values() for v in values)
    subsets = list(dict.fromkeys(s for results in results_of.values() for r in results for s in r["summary"]
                                 if s != "total"))

    def published(name, subset):  # the paper's NME of a configuration's variant, or None
        return PAPER_NME.get(subset, {}).get(results_variant(results_of[name][0]))

    lines = ["# Runs per configuration: mean +/- std over runs (n)", "",
             "| configuration | set | runs | NME | AUC@0.08 | FR@0.08 |" + (" paper NME |" if paper else "")
             + (" val NME of each run |" if with_validation else ""),
             "|---|---|---|---|---|---|" + "---|" * (paper + with_validation)]
    for name, results in results_of.items():
        for s in subsets:
            cells = []
            for metric in METRICS:
                mean, std, n = mean_std(r["summary"].get(s, {}).get(metric) for r in results)
                scale, digits = (100, 2) if metric == "fr" else (1, 4)
                cells.append("–" if mean is None else f"{mean * scale:.{digits}f}"
                             + ("" if std is None else f" ± {std * scale:.{digits}f}") + ("%" if metric == "fr" else ""))
            if paper:
                value = published(name, s)
                cells.append("–" if value is None else f"{value:.4f}")
            if with_validation:  # one per run, not per test set: on the configuration's first row
                cells.append("" if s != subsets[0] else
                             ", ".join("–" if v is None else f"{v:.4f}" for v in validation[name]))
            lines.append(f"| {name} | {dataset(s).label} | {len(results)} | " + " | ".join(cells) + " |")
    if pairs:
        lines += ["", "## Paired comparisons (NME of A minus B, face by face; 95% bootstrap interval over seeds and "
                  "faces)", "", "| A | B | set | faces | mean difference | 95% interval | A better? |"
                  + (" paper A - B |" if paper else ""), "|---|---|---|---|---|---|---|" + "---|" * paper]
        for a, b in pairs:
            for name in (a, b):
                if name not in groups:
                    raise ValueError(f"--paired {a},{b}: no runs of configuration {name!r}; found "
                                     f"{', '.join(groups)}")
            for s in subsets:
                d = paired_difference(results_of[a], results_of[b], s)
                verdict = "yes" if d["high"] < 0 else "no (B better)" if d["low"] > 0 else "not shown"
                row = (f"| {a} | {b} | {dataset(s).label} | {d['faces']} | {d['mean']:+.4f} | "
                       f"[{d['low']:+.4f}, {d['high']:+.4f}] | {verdict} |")
                if paper:
                    pa, pb = published(a, s), published(b, s)
                    row += " – |" if None in (pa, pb) else f" {pa - pb:+.4f} |"
                lines.append(row)
    return "\n".join(lines) + "\n"


__all__ = ["configuration", "group_runs", "run_metrics", "validation_nme", "mean_std", "face_nmes", "paired_difference",
           "render_aggregate"]
