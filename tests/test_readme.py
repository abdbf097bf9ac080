"""The README's generated blocks (results, data-layer) are what benchmarks/summarize.py makes of the result files."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT, benchmark


def test_readme_results_block_matches_the_result_files():
    checked = subprocess.run(
        [sys.executable, "benchmarks/summarize.py", "--check"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr


def test_one_seed_rows_say_so_and_last_epoch_rows_are_flagged():
    summarize = benchmark("summarize")
    one_seed = {"seeds": [1], "test_mean": 0.5, "test_std": 0.0}
    assert summarize.test_f1(one_seed) == "50.00 (1 seed)"
    flagged = {"seeds": [1, 2], "best_epoch": {"1": 4, "2": 3}, "epochs_completed": {"1": 4, "2": 5}}
    assert summarize.best_epochs(flagged) == "4/4 3/5 (last)"
    assert summarize.best_epochs({**flagged, "best_epoch": {"1": 2, "2": 3}}) == "2/4 3/5"


def test_a_several_seed_row_names_each_seed_s_dev_figure_not_seed_1_s_alone():
    summarize = benchmark("summarize")
    row = {
        "seeds": [1, 2],
        "dev": {"1": {"f1": 0.8876}, "2": {"f1": 0.8785}},
        "best_epoch": {"1": 8, "2": 7},
        "epochs_completed": {"1": 8, "2": 8},
        "hyperparameters": {"epochs": 8},
    }
    assert summarize._dev_and_epochs(row) == (
        "seed 1: dev 88.76, best epoch 8 of 8; seed 2: dev 87.85, best epoch 7 of 8"
    )
    assert summarize._dev_and_epochs({**row, "seeds": [2]}) == "dev 87.85, best epoch 7 of 8"


def test_the_default_variance_head_is_the_one_dev_chose():
    from mmib.model import MMIBConfig

    summarize = benchmark("summarize")
    assert summarize.chosen_variance_head() == MMIBConfig().logvar_head


def test_the_serving_defaults_the_readme_states_are_the_code_s():
    """The README once said 5 ms of batch waiting while the server waited 50 ms."""
    import inspect
    import re

    from mmib.predict.serve import create_app

    defaults = inspect.signature(create_app).parameters
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    stated = re.search(r"batched \(up to (\d+) posts; a batch waits at most (\d+) ms", readme)
    assert stated, "the README no longer states the batching defaults"
    assert int(stated.group(1)) == defaults["batch_size"].default
    assert float(stated.group(2)) == defaults["max_wait_ms"].default


def test_a_rerun_pins_what_the_row_recorded_and_what_earlier_runs_had():
    """benchmarks/reproduce.py: a default changed after a row was recorded must not change its rerun."""
    reproduce = benchmark("reproduce")
    original = {
        "hyperparameters": {"epochs": 2, "eval_batch_size": 32, "model": {"beta1": 0.1, "labels": ["O"]}}
    }
    pins = reproduce.pinned_settings(original)
    pairs = dict(pins[i + 1].split("=", 1) for i in range(0, len(pins), 2))
    assert set(pins[::2]) == {"--set"}
    assert pairs["epochs"] == "2" and pairs["eval_batch_size"] == "32" and pairs["model.beta1"] == "0.1"
    assert pairs["bucket_by_length"] == "false"  # added after the row: earlier runs did not bucket
    assert pairs["model.logvar_head"] == '"apenc"' and "model.labels" not in pairs
    assert reproduce.pinned_settings({"command": "..."}) == []  # rows recorded before hyperparameters were


def test_the_regulariser_table_reads_each_seed_s_last_l_ar_from_the_run_logs(tmp_path):
    """benchmarks/regulariser_losses.py keeps L_ar and the KL by epoch; the RESULTS table shows the last epoch's
    range over seeds, and says so where a row's logs were not kept."""
    import json

    regulariser_losses = benchmark("regulariser_losses")
    summarize = benchmark("summarize")
    run = tmp_path / "seed-1"
    run.mkdir()
    epochs = [{"alignment": 0.69, "refinement": 0.2}, {"alignment": 0.64, "refinement": 0.1}]
    (run / "metrics.jsonl").write_text(
        "".join(
            json.dumps({"epoch": i + 1, "dev": {"f1": 0.5}, "train": t}) + "\n" for i, t in enumerate(epochs)
        )
    )
    losses, ceiling = regulariser_losses.seed_losses(run, ceiling_posts=1000)
    assert losses == {"epochs": [1, 2], "alignment_by_epoch": [0.69, 0.64], "refinement_by_epoch": [0.2, 0.1]}
    assert ceiling is None  # no train_config.json: the data, and so its ceiling, is unknown
    entry = {
        "alignment_ceiling": 0.6147,
        "seeds": {"1": losses, "2": {**losses, "alignment_by_epoch": [0.7, 0.66]}},
    }
    assert summarize._last_alignment(entry) == ("0.640-0.660", "0.615")
    assert summarize._last_alignment(None) == ("run logs not kept", "")


def test_the_long_budget_table_compares_rows_at_the_seeds_they_share_under_both_selections(
    tmp_path, monkeypatch
):
    """Dev-selected test F1 and the max over epochs (the released code's test selection), each against MMIB at
    the seeds every row has: a row still short of seed 3 does not make MMIB's seed 3 count."""
    import json

    summarize = benchmark("summarize")

    def row(name: str, selected: list[float], best: list[float]) -> None:
        seeds = list(range(1, len(selected) + 1))
        result = {
            "seeds": seeds,
            "test_mean": sum(selected) / len(selected),
            "test": {str(s): {"f1": f} for s, f in zip(seeds, selected, strict=True)},
            "best_epoch": {str(s): 10 + s for s in seeds},
            "protocol_gap": {str(s): {"best_test_f1": b} for s, b in zip(seeds, best, strict=True)},
        }
        (tmp_path / f"{name}.json").write_text(json.dumps(result))

    row("synth-ner-small-long-mmib", [0.90, 0.92, 0.10], [0.93, 0.95, 0.20])
    row("synth-ner-small-long-no-rr", [0.94, 0.96], [0.94, 0.97])
    monkeypatch.setattr(summarize, "RESULTS", tmp_path)
    lines = summarize.long_budget_rows()
    assert "seeds 1 2, the ones every row has" in lines[0]
    mmib, no_rr = lines[-2], lines[-1]
    assert mmib.startswith("| MMIB | 91.00 +- 1.41 | | | 11 12 | 94.00 +- 1.41 | | |")
    # +4.00 dev-selected against a band of 2 x 1.41; +1.50 under test selection, within it
    assert no_rr.startswith(
        "| w/o L_rr | 95.00 +- 1.41 | +4.00 | yes (band 2.83) | 11 12 | 95.50 +- 2.12 | +1.50 | no (band 4.24) |"
    )
    assert no_rr.endswith("| run logs not kept |  |")


def test_regulariser_losses_reads_only_the_seeds_the_result_file_has_finished(tmp_path, monkeypatch, capsys):
    """A seed still training (no epoch in its log yet) is skipped and named, not an error for the whole row."""
    import json

    regulariser_losses = benchmark("regulariser_losses")
    runs = tmp_path / "runs" / "row"
    for seed, lines in (("1", [{"epoch": 1, "dev": {"f1": 0.5}, "train": {"alignment": 0.6}}]), ("2", [])):
        (runs / f"seed-{seed}").mkdir(parents=True)
        (runs / f"seed-{seed}" / "metrics.jsonl").write_text(
            "".join(json.dumps(line) + "\n" for line in lines)
        )
    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    (results / "row.json").write_text(json.dumps({"dev": {"1": {"f1": 0.5}}}))
    monkeypatch.setattr(regulariser_losses, "ROOT", tmp_path)
    monkeypatch.setattr(regulariser_losses, "TARGET", results / "regulariser_losses.json")
    monkeypatch.setattr(sys, "argv", ["regulariser_losses.py", "row", "--run-root", str(tmp_path / "runs")])
    regulariser_losses.main()
    stored = json.loads((results / "regulariser_losses.json").read_text())
    assert list(stored["row"]["seeds"]) == ["1"]
    assert stored["row"]["seeds"]["1"]["alignment_by_epoch"] == [0.6]
    assert "skipped seed-2" in capsys.readouterr().err


def test_a_planned_grid_names_no_choice_until_every_point_is_recorded(tmp_path, monkeypatch):
    """Part of a grid run across sessions: the table says "best so far" and --choice refuses."""
    import json

    import pytest

    lr_grid = benchmark("lr_grid")
    point = {"seeds": [1], "dev_mean": 0.88, "best_epoch": {"1": 5}, "epochs_completed": {"1": 8}}
    point["hyperparameters"] = {"head_learning_rate": 0.001}
    (tmp_path / "grid-g-lr2e-5.json").write_text(json.dumps(point))
    monkeypatch.setattr(lr_grid, "RESULTS", tmp_path)
    monkeypatch.setattr(lr_grid, "PLANNED", {"g": ("2e-5", "3e-5")})
    text = lr_grid.table("g", lr_grid.grid_points("g"))
    assert "incomplete, not yet run: 3e-5" in text and "| best so far |" in text
    monkeypatch.setattr(sys, "argv", ["lr_grid.py", "g", "--choice"])
    with pytest.raises(SystemExit, match="grid incomplete"):
        lr_grid.main()
    (tmp_path / "grid-g-lr3e-5.json").write_text(json.dumps({**point, "dev_mean": 0.9}))
    assert "| 3e-5 | 0.001 | 1 | 90.00 | 5/8 | yes |" in lr_grid.table("g", lr_grid.grid_points("g"))


def test_dev_curves_are_added_from_the_seed_s_own_run_and_shown_beside_its_test_f1(tmp_path, monkeypatch):
    """A run folder whose dev F1 at the recorded best epoch differs is refused (another seed's or lr's run);
    the right one's curve lands in the file and in the BERT-base-size table."""
    import json

    import pytest

    dev_curves = benchmark("dev_curves")
    summarize = benchmark("summarize")
    for folder, curve in (("right", [0.70, 0.85, 0.80]), ("wrong", [0.70, 0.86, 0.80])):
        (tmp_path / folder / "seed-1").mkdir(parents=True)
        (tmp_path / folder / "seed-1" / "metrics.jsonl").write_text(
            "".join(json.dumps({"epoch": e + 1, "dev": {"f1": f}}) + "\n" for e, f in enumerate(curve))
        )
    result = {
        "text_encoder": "all-mpnet-base-v2", "seeds": [1], "dev": {"1": {"f1": 0.85}},
        "test": {"1": {"f1": 0.8712}}, "best_epoch": {"1": 2}, "epochs_completed": {"1": 3},
        "train_seconds": {"1": 600.0}, "train_samples_per_second": {"1": 12.5},
        "peak_rss_mb_per_seed": {"1": 2900.0}, "hyperparameters": {"learning_rate": 3e-5, "epochs": 3},
        "seed_hardware": {"1": {"cpu": "Intel(R) Xeon(R) Processor", "cpu_mhz": 2100}},
        "hardware": {"cpu": "AMD EPYC", "cpu_mhz": 2596},
    }  # fmt: skip
    (tmp_path / "row-mpnet.json").write_text(json.dumps(result))
    monkeypatch.setattr(dev_curves, "RESULTS", tmp_path)
    monkeypatch.setattr(summarize, "RESULTS", tmp_path)
    monkeypatch.setattr(sys, "argv", ["dev_curves.py", "row-mpnet", "--run-root", str(tmp_path / "wrong")])
    with pytest.raises(SystemExit, match="not this seed's run"):
        dev_curves.main()
    monkeypatch.setattr(sys, "argv", ["dev_curves.py", "row-mpnet", "--run-root", str(tmp_path / "right")])
    dev_curves.main()
    assert json.loads((tmp_path / "row-mpnet.json").read_text())["dev_curve"] == {"1": [0.70, 0.85, 0.80]}
    # the CPU is the seed's own, not the machine of the file's last run
    assert "| row-mpnet | 3e-5 | 1 | 70.00 85.00 80.00 | 2/3 | 87.12 | Xeon 2.1 GHz | 12.5 | 200 | 2.9 |" in (
        summarize.base_size_rows()
    )
