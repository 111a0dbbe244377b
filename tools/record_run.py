"""Copy a finished run's record into the repository: its resolved recipe, log and metrics, and its evaluations
(tables, results.json with the predicted points; CED plots with --plots), never its checkpoints or weights.

    python tools/record_run.py RUN_DIR [RUN_DIR ...] [--dest docs/ablation/runs] [--plots]

Each run goes to DEST/<run folder name>/. Runs that have not finished, or have no eval_gt/results.json yet
(tools/train_queue.sh writes it after training), are refused by name, so only complete records are committed.
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUN_FILES = ("recipe.yaml", "log.jsonl", "metrics.json")


def copy_record(run, dest, plots=True):
    """``run``'s recipe, log, metrics and every ``eval*/`` folder's JSON and Markdown (and PNG plots) into
    ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for file in RUN_FILES:
        shutil.copyfile(run / file, dest / file)
    suffixes = (".json", ".md", ".png") if plots else (".json", ".md")
    for src in sorted(run.glob("eval*/")):
        (dest / src.name).mkdir(exist_ok=True)
        for file in src.iterdir():
            if file.suffix in suffixes:
                shutil.copyfile(file, dest / src.name / file.name)


def problem(run):
    """Why ``run`` cannot be recorded yet, or None."""
    missing = [f for f in (*RUN_FILES, "eval_gt/results.json") if not (run / f).is_file()]
    if missing:
        return f"{run}: no {', '.join(missing)}"
    if not json.loads((run / "metrics.json").read_text()).get("finished"):
        return f"{run}: not finished (metrics.json 'finished' is empty)"
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--dest", type=Path, default=REPO / "docs" / "ablation" / "runs")
    parser.add_argument("--plots", action="store_true", help="also copy the CED plots")
    args = parser.parse_args()
    problems = [p for p in map(problem, args.runs) if p]
    if problems:
        sys.exit("\n".join(problems))
    for run in args.runs:
        copy_record(run, args.dest / run.name, plots=args.plots)
        print(f"{run} -> {args.dest / run.name}")


if __name__ == "__main__":
    main()
