"""Seeds of one configuration: grouping by run folder name, mean +/- std, and the paired bootstrap of two
configurations, against values computed by hand."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from flzoo.aggregate import configuration, mean_std, paired_difference
from flzoo.cli import main


def results(model, nmes, boxes="gt", subset="helen_test"):
    faces = [{"image": f"img{i // 2}.jpg", "subset": subset, "nme": v, "nme_eyes": v} for i, v in enumerate(nmes)]
    nme = float(np.mean(nmes))
    return {"model": model, "boxes": boxes, "faces": faces,
            "summary": {subset: {"n": len(nmes), "nme": nme, "auc": 1 - nme, "fr": 0.0},
                        "total": {"n": len(nmes), "nme": nme, "auc": 1 - nme, "fr": 0.0}}}


def test_configuration_strips_the_seed_suffix():
    assert configuration(results("runs/pwc_seed2/best", [0.1])) == "pwc"
    assert configuration(results("runs/hybrid-disc-seed10/best", [0.1])) == "hybrid-disc"
    assert configuration(results("runs/pwc_seed0/best", [0.1], boxes="detector")) == "pwc (detector)"
    assert configuration(results("hybrid_disc", [0.1])) == "hybrid_disc"
    # a bundled model's evaluation is seed 0 of its configuration
    assert configuration(results("runs/zoo/pwc/preset-pwc.mnv2", [0.1])) == "pwc.mnv2"
    assert configuration(results("runs/ablation/pwc.mnv2_seed1/best", [0.1])) == "pwc.mnv2"
    assert configuration(results("runs/ablation/pwc.mnv2_adv0.3/best", [0.1])) == "pwc.mnv2_adv0.3"


def test_mean_and_sample_std_by_hand():
    mean, std, n = mean_std([0.03, 0.04, 0.05])
    assert (mean, n) == (pytest.approx(0.04), 3) and std == pytest.approx(0.01)  # sqrt(((.01)^2*2)/2)
    assert mean_std([0.03]) == (0.03, None, 1)


def test_paired_difference_bootstraps_over_faces_by_hand():
    d = paired_difference([results("r/a_seed0/best", [0.20, 0.30])], [results("r/b_seed0/best", [0.20, 0.20])],
                          "helen_test", resamples=20000)
    # differences (0.0, 0.1), mean 0.05; two faces: the bootstrap mean is 0 (p 1/4), 0.05 (1/2) or 0.1 (1/4), so
    # the 95% interval is [0, 0.1]
    assert d["faces"] == 2 and d["mean"] == pytest.approx(0.05)
    assert (d["low"], d["high"]) == (pytest.approx(0.0), pytest.approx(0.1))
    same = paired_difference([results("x_seed0", [0.1, 0.3, 0.2])], [results("y_seed0", [0.05, 0.25, 0.15])],
                             "helen_test")
    assert (same["mean"], same["low"], same["high"]) == (pytest.approx(0.05),) * 3  # every difference 0.05


def test_paired_difference_holds_the_spread_between_seeds():
    # every face alike within a run, so only the seeds vary: a bootstrap over faces alone would give [0, 0]
    a = [results("r/a_seed0/best", [0.1, 0.1]), results("r/a_seed1/best", [0.3, 0.3])]
    b = [results("r/b_seed0/best", [0.2, 0.2])]
    d = paired_difference(a, b, "helen_test", resamples=20000)
    # A's two runs drawn with replacement: mean 0.1 (p 1/4), 0.2 (1/2) or 0.3 (1/4): differences -0.1 .. 0.1
    assert d["mean"] == pytest.approx(0.0) and (d["low"], d["high"]) == (pytest.approx(-0.1), pytest.approx(0.1))
    # seeds and faces both vary: A's per-face mean over the drawn runs is (0.1, 0.2), (0.2, 0.3) or (0.3, 0.4)
    # (p 1/4, 1/2, 1/4), minus B's (0.2, 0.2); then two faces drawn: the draw means run from -0.1 (p 1/16) to
    # 0.2 (p 1/16), each end more likely than 2.5%, so the interval is [-0.1, 0.2]
    a = [results("r/a_seed0/best", [0.10, 0.20]), results("r/a_seed1/best", [0.30, 0.40])]
    d = paired_difference(a, b, "helen_test", resamples=20000)
    assert d["mean"] == pytest.approx(0.05) and (d["low"], d["high"]) == (pytest.approx(-0.1), pytest.approx(0.2))


def test_compare_aggregates_seeds_and_reports_paired_intervals(tmp_path):
    paths = []
    for config, base in (("pwc", 0.05), ("hybrid", 0.04)):
        for seed in range(3):
            folder = tmp_path / f"{config}_seed{seed}" / "eval_gt"
            folder.mkdir(parents=True)
            nmes = [base + 0.001 * seed + 0.002 * i for i in range(6)]
            (folder / "results.json").write_text(json.dumps(results(str(folder.parent / "best"), nmes)))
            if config == "pwc":  # a training run's folder holds its metrics.json beside the eval folder
                (folder.parent / "metrics.json").write_text(json.dumps({"best_val_nme": 0.06 + 0.001 * seed}))
            paths.append(str(folder))
    out = tmp_path / "cmp"
    result = CliRunner().invoke(main, ["compare", *paths, "-o", str(out), "--paired", "hybrid,pwc"])
    assert result.exit_code == 0, result.output
    text = (out / "aggregate.md").read_text()
    assert "| pwc | Helen | 3 | 0.0560 ± 0.0010 |" in text and "| hybrid | Helen | 3 | 0.0460 ± 0.0010 |" in text
    # each run's validation NME, in the order given, where its run folder has a metrics.json
    assert "| val NME of each run |" in text and "| 0.0600, 0.0610, 0.0620 |" in text and "| –, –, – |" in text
    # each face: hybrid - pwc = -0.010 + 0.001 x (the mean seed of hybrid's drawn runs - pwc's), seeds 0-2
    row = next(line for line in text.splitlines() if line.startswith("| hybrid | pwc | Helen | 6 | -0.0100 | ["))
    low, high = (float(v) for v in row.split("[")[1].split("]")[0].split(","))
    assert -0.012 <= low < -0.0100 < high <= -0.008 and row.endswith("| yes |")
    # no run folder with a metrics.json: no validation column
    result = CliRunner().invoke(main, ["compare", *paths[3:], "-o", str(tmp_path / "hybrid_only")])
    assert result.exit_code == 0 and "| hybrid | Helen | 3 |" in result.output and "val NME" not in result.output
    # --paper: the paper's Table 2 NME of each configuration's variant (Helen: PWC 0.0334, hybrid 0.0315), and A - B
    result = CliRunner().invoke(main, ["compare", *paths, "-o", str(out), "--paired", "hybrid,pwc", "--paper"])
    assert result.exit_code == 0, result.output
    text = (out / "aggregate.md").read_text()
    assert "| pwc | Helen | 3 | 0.0560 ± 0.0010 |" in text and text.count("| 0.0334 |") == 1
    assert next(line for line in text.splitlines() if line.startswith("| hybrid | pwc |")).endswith("| -0.0019 |")
    bad = CliRunner().invoke(main, ["compare", *paths, "-o", str(out), "--paired", "hybrid,nope"])
    assert bad.exit_code != 0 and "no runs of configuration 'nope'" in bad.output
    # a broken metrics.json: a clear error naming the file, and nothing written (no comparison.md beside a stale
    # aggregate.md)
    broken = tmp_path / "pwc_seed1" / "metrics.json"
    for content, message in (("{truncated", "not a metrics.json"), ("[0.06]", "not a metrics.json"),
                             ('{"best_val_nme": "0.06"}', "best_val_nme is '0.06'"),
                             ('{"best_val_nme": [0.06]}', "best_val_nme is [0.06]"),
                             ('{"best_val_nme": NaN}', "best_val_nme is nan")):
        broken.write_text(content)
        fresh = tmp_path / "fresh"
        bad = CliRunner().invoke(main, ["compare", *paths, "-o", str(fresh)])
        assert bad.exit_code == 1 and isinstance(bad.exception, SystemExit), (content, bad.exception)
        assert f"{broken}: {message}" in bad.output and not fresh.exists(), content


def test_each_runs_validation_nme_is_given_once_per_configuration_not_per_test_set(tmp_path):
    paths = []
    for seed in range(2):
        run = tmp_path / f"pwc_seed{seed}"
        folder = run / "eval_gt"
        folder.mkdir(parents=True)
        helen = results(str(run / "best"), [0.05, 0.06])
        lfpw = results(str(run / "best"), [0.07, 0.08], subset="lfpw_test")
        helen["faces"] += lfpw["faces"]
        helen["summary"]["lfpw_test"] = lfpw["summary"]["lfpw_test"]
        (folder / "results.json").write_text(json.dumps(helen))
        (run / "metrics.json").write_text(json.dumps({"best_val_nme": 0.06 + 0.001 * seed}))
        paths.append(str(folder))
    result = CliRunner().invoke(main, ["compare", *paths, "-o", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    rows = [line for line in (tmp_path / "cmp" / "aggregate.md").read_text().splitlines() if line.startswith("| pwc |")]
    assert len(rows) == 2 and rows[0].startswith("| pwc | Helen | 2 | 0.0550 ± 0.0000 |")
    assert rows[0].endswith("| 0.0600, 0.0610 |") and rows[1].startswith("| pwc | LFPW |") and rows[1].endswith("|  |")


def test_the_committed_ablation_is_what_its_records_give(tmp_path):
    # docs/ablation/mnv2/aggregate.md is recomputed from the committed run records by one command
    repo = Path(__file__).resolve().parent.parent
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    subprocess.run(["bash", "tools/ablation.sh", str(tmp_path)], cwd=repo, env=env, check=True, capture_output=True)
    assert (tmp_path / "aggregate.md").read_text() == (repo / "docs/ablation/mnv2/aggregate.md").read_text()


def test_the_sweep_picks_the_weight_with_the_lowest_validation_nme_once_every_run_has_finished(tmp_path):
    # tools/queue_all.sh trains seeds at the weight tools/sweep_choice.py prints, so a wrong pick costs hours
    repo = Path(__file__).resolve().parent.parent
    runs = []
    for weight, val, finished in ((0.03, 0.0425, "max_steps"), (0.1, 0.0453, "max_steps"), (0.3, 0.0410, None)):
        run = tmp_path / f"pwc_disc_adv{weight}"
        run.mkdir()
        (run / "recipe.yaml").write_text(f"model:\n  options:\n    adv_weight: {weight}\n")
        (run / "metrics.json").write_text(json.dumps({"finished": finished, "best_val_nme": val}))
        runs.append(str(run))

    def choose(*folders):
        return subprocess.run([sys.executable, "tools/sweep_choice.py", *folders], cwd=repo, capture_output=True,
                              text=True)

    picked = choose(*runs[:2])
    assert picked.returncode == 0 and picked.stdout == "0.03\n"
    assert "adv_weight 0.1: validation NME 0.0453" in picked.stderr
    unfinished = choose(*runs)  # 0.3 scores best so far but is still training: no choice yet
    assert unfinished.returncode == 1 and unfinished.stdout == "" and f"{runs[2]}: not finished" in unfinished.stderr
