"""The pilot table of docs/training.md from pilot run folders (their recipe.yaml, log.jsonl, metrics.json).

    python tools/pilot_table.py ../flzoo-runs/pilots/*

Per run: backbone, input size, frozen stride, trainable parameters, training img/s and wall hours (from
metrics.json: the 2-core machine, so an hour of wall time is an hour of the whole CPU), validation NME at each
500 steps up to the longest run's last (``--every N`` for another spacing) and the best (validation split of the
training faces; no test set). ``python tools/pilot_table.py docs/runs/*.mnv2`` gives the zoo's learning curves.
``--loss NAME`` adds a column of a logged training loss at the same steps (the mean since the previous log line),
e.g. ``--loss disc_acc``: how often the shape discriminator tells real shapes from predicted ones.
"""

import argparse
import json
import sys
from pathlib import Path

import yaml


def row(run, loss=None):
    run = Path(run)
    recipe = yaml.safe_load((run / "recipe.yaml").read_text())
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    metrics = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").is_file() else {}
    config = json.loads((run / "best" / "config.json").read_text()) if (run / "best" / "config.json").is_file() else {}
    m = recipe["model"]
    at = {e["step"]: e["val_nme"] for e in log}
    losses = {e["step"]: e.get("losses", {}).get(loss) for e in log} if loss else {}
    best = min(log, key=lambda e: e["val_nme"]) if log else None
    hours = (metrics.get("wall_s") or (log[-1]["time_s"] if log else 0)) / 3600
    return {"run": run.name, "backbone": m["backbone"], "input": m["input_size"],
            "freeze": m["options"].get("freeze", "-") if m.get("pretrained") else "scratch",
            "params": (config.get("params") or {}).get("trainable"), "img_s": metrics.get("train_images_per_s"),
            "hours": hours, "val": at, "loss": losses,
            "best": (best["val_nme"], best["step"]) if best else None, "finished": metrics.get("finished"),
            "logged": {k for e in log for k in e.get("losses", {})}}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--every", type=int, default=500, help="steps between the validation NME columns")
    parser.add_argument("--loss", help="also this logged training loss at the same steps (e.g. disc_acc, adv)")
    args = parser.parse_args()
    rows = [row(r, args.loss) for r in args.runs if (r / "log.jsonl").is_file()]
    if args.loss and not any(args.loss in r["logged"] for r in rows):  # a typo, not a column of dashes
        logged = sorted(set().union(*(r["logged"] for r in rows)))
        sys.exit(f"no run logged a loss {args.loss!r}; logged: {', '.join(logged) or 'none'}")
    last = max((max(r["val"], default=0) for r in rows), default=0)
    steps = list(range(args.every, last + 1, args.every))
    print("| pilot | backbone | input | frozen to | trainable params | train img/s | wall h | val NME @"
          + " / ".join(str(s) for s in steps) + " | best val NME (step) |"
          + (f" {args.loss} @" + " / ".join(str(s) for s in steps) + " |" if args.loss else ""))
    print("|---|---|---|---|---|---|---|---|---|" + "---|" * bool(args.loss))
    for r in rows:
        val = " / ".join("-" if r["val"].get(s) is None else f"{r['val'][s]:.4f}" for s in steps)
        params = f"{r['params']:,}" if r["params"] else "-"
        best = f"{r['best'][0]:.4f} ({r['best'][1]})" if r["best"] else "-"
        note = "" if r["finished"] else " (running)"
        loss = " / ".join("-" if r["loss"].get(s) is None else f"{r['loss'][s]:.3f}" for s in steps)
        print(f"| {r['run']}{note} | {r['backbone']} | {r['input']} | {r['freeze']} | {params} | "
              f"{r['img_s'] or '-'} | {r['hours']:.2f} | {val} | {best} |" + (f" {loss} |" if args.loss else ""))


if __name__ == "__main__":
    sys.exit(main())
