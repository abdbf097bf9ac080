"""RESULTS.md (every result, performance and protocol table) and the README's generated blocks (the
headline table, the data layer), made from the result files in benchmarks/results.

python benchmarks/summarize.py                 # print RESULTS.md
python benchmarks/summarize.py --write-readme  # write RESULTS.md and every README block between its markers
python benchmarks/summarize.py --check         # exit 1 when RESULTS.md or a README block differs (a test runs this)
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
# Published test F1 for comparison (Cui et al. 2024, Tables III-IV; text-only NER rows: BERT-base CRF
# baselines as the model issue quotes them; text-only MRE: MTB, the BERT-based text-only RE row of Table IV).
PUBLISHED = {
    ("twitter2015", "text-only"): 71.81,
    ("twitter2017", "text-only"): 83.44,
    ("twitter2015", "mmib"): 76.02,
    ("twitter2017", "mmib"): 87.60,
    ("mnre", "text-only"): 60.86,
    ("mnre", "mmib"): 83.23,
}


def _load(name: str) -> dict | list | None:
    """benchmarks/results/<name>.json, or None where it has not been written."""
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


CAPTIONER_NAMES = {"blip2": "BLIP-2", "instructblip": "InstructBLIP", "qwen": "Qwen-VL", "cogvlm": "CogVLM"}


def seed_mean(result: dict, part: str, key: str) -> float:
    seeds = [str(s) for s in result["seeds"]]
    return sum(result[part][s][key] for s in seeds) / len(seeds)


def image_side(result: dict) -> str:
    """What the model's image side saw: none (text-only), pixels, captions, or nothing (image-absent)."""
    if result["variant"].startswith("text-caption-pair"):
        return "caption as text"
    if result["variant"] == "text-only":
        return "none"
    if result.get("image_source") == "captions":
        return f"{CAPTIONER_NAMES.get(result.get('captioner') or 'blip2', result.get('captioner'))} captions"
    return "pixels" if result["dataset"].startswith("synthetic") else "absent (no images here)"


def test_f1(result: dict) -> str:
    """Mean +- sample std over seeds; a single seed says so rather than showing a zero spread."""
    if len(result["seeds"]) == 1:
        return f"{100 * result['test_mean']:.2f} (1 seed)"
    return f"{100 * result['test_mean']:.2f} +- {100 * result['test_std']:.2f}"


def best_epochs(result: dict) -> str:
    """Best dev epoch / epochs run per seed; ', last' when some seed's best epoch was its last (still rising)."""
    seeds = [str(s) for s in result["seeds"]]
    run = result.get("epochs_completed") or {}
    budget = result.get("hyperparameters", {}).get("epochs")
    pairs = [(result["best_epoch"][s], run.get(s, budget)) for s in seeds]
    text = " ".join(f"{best}/{epochs}" for best, epochs in pairs)
    return text + (" (last)" if any(best == epochs for best, epochs in pairs) else "")


def result_files() -> list[Path]:
    """Result files of trained rows (grid points, which have no test figures, and the beta sweep's points,
    which have their own figure, are left out)."""
    return [
        path
        for path in sorted(RESULTS.glob("*.json"))
        if not path.stem.startswith("beta-") and "test_mean" in json.loads(path.read_text())
    ]


def rows() -> list[str]:
    lines = [
        "| result | task | variant | image side | text encoder | seeds | test P | test R | test F1 | dev F1 | "
        "best epoch / run | published F1 | train samples/s | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for path in result_files():
        result = json.loads(path.read_text())
        seeds = [str(s) for s in result["seeds"]]
        dataset = next((d for d in ("twitter2015", "twitter2017", "mnre") if d in result["dataset"]), None)
        published = PUBLISHED.get((dataset, result["variant"]), "")
        speed = sorted(result["train_samples_per_second"][s] for s in seeds)[-1]
        lines.append(
            f"| {path.stem} | {result['task']} | {result['variant']} | {image_side(result)} | "
            f"{result['text_encoder']} | {len(seeds)} | "
            f"{100 * seed_mean(result, 'test', 'precision'):.2f} | {100 * seed_mean(result, 'test', 'recall'):.2f} | "
            f"{test_f1(result)} | {100 * seed_mean(result, 'dev', 'f1'):.2f} | {best_epochs(result)} | "
            f"{published} | {speed} | {result['peak_rss_mb']:.0f} |"
        )
    return lines


# A benchmark with BLIP-2 captions as the image side: every row against the text-only CRF of the same recipe
CAPTION_ROWS = (
    ("text-only-tuned", "text-only CRF"),
    ("text-caption-pair", "text + caption as a sentence pair"),
    (
        "mmib-captions-linear-logvar",
        "MMIB, captions as the image side (linear log-variance head, the default)",
    ),
    ("mmib-captions", "MMIB captions, log-variance as eq. (7) writes it (apenc)"),
    ("mmib-captions-no-rr", "MMIB captions, w/o L_rr (no variance head)"),
    ("mmib-captions-linear-logvar-no-ar", "MMIB captions, w/o L_ar (linear head, the default)"),
    ("mmib-captions-no-ar", "MMIB captions, w/o L_ar (apenc head)"),
    ("mmib-captions-bilinear", "MMIB captions, bilinear discriminator (as released)"),
    ("mmib-captions-released-code", "MMIB captions, the released code's settings"),
)
CAPTION_BENCHMARKS = (("twitter2017", "Twitter-2017"), ("twitter2015", "Twitter-2015"))


def caption_rows() -> list[str]:
    lines: list[str] = []
    for bench, title in CAPTION_BENCHMARKS:
        table = caption_table(bench, title)
        lines += [*([""] if lines and table else []), *table]
    return lines


def caption_table(bench: str, title: str) -> list[str]:
    """Each captions row of one benchmark against its text-only CRF: the difference of means and twice the
    larger seed std (the acceptance band); NOT the paper's pixel setting."""
    found = {
        name: json.loads((RESULTS / f"{bench}-{name}.json").read_text())
        for name, _ in CAPTION_ROWS
        if (RESULTS / f"{bench}-{name}.json").exists()
    }
    found = {name: result for name, result in found.items() if "test_mean" in result}
    base = found.get("text-only-tuned")
    if base is None or len(found) < 2:
        return []
    types = sorted(base["test"][str(base["seeds"][0])].get("per_type_f1", {}))
    lines = [
        f"{title} with BLIP-2 captions of the real photos as the image side (not the paper's pixel setting; "
        f"same recipe for every row: encoder lr {base['hyperparameters']['learning_rate']}, "
        f"{base['hyperparameters']['epochs']} epochs at batch {base['hyperparameters']['batch_size']}, "
        f"patience {base['hyperparameters']['patience']}; per-type F1 is the mean over the row's seeds):",
        "",
        "| row | seeds | test F1 | vs text-only CRF | 2 x larger std | beyond it? | "
        + " | ".join(types)
        + " |",
        "|---|---|---|---|---|---|" + "---|" * len(types),
    ]
    for name, label in CAPTION_ROWS:
        result = found.get(name)
        if result is None:
            continue
        per_type = " | ".join(f"{_type_mean(result, kind):.2f}" for kind in types)
        lines.append(
            f"| {label} | {len(result['seeds'])} | {test_f1(result)} | {_against_cells(result, base)} | {per_type} |"
        )
    return lines


def against(result: dict, base: dict) -> tuple[float, float | None, str]:
    """A row's test F1 against its baseline's: the difference of means, twice the larger seed std (None
    below two seeds each) and whether the difference passes that band."""
    delta = 100 * (result["test_mean"] - base["test_mean"])
    both = len(result["seeds"]) > 1 and len(base["seeds"]) > 1
    band = 200 * max(result["test_std"], base["test_std"]) if both else None
    verdict = "needs 2+ seeds each" if band is None else ("yes" if abs(delta) > band else "no")
    return delta, band, verdict


def _trained(rows) -> dict[str, dict]:
    """The rows' result files that hold test figures, by name (rows: (name, label) pairs)."""
    found = {name: _load(name) for name, _ in rows}
    return {name: result for name, result in found.items() if result and "test_mean" in result}


def _against_cells(result: dict, base: dict) -> str:
    """The "vs base | 2 x larger std | beyond it?" cells of a table row; empty for the base row itself."""
    if result is base:
        return "| |"  # three empty cells between the surrounding separators
    delta, band, verdict = against(result, base)
    return f"{delta:+.2f} | {'' if band is None else f'{band:.2f}'} | {verdict}"


def _type_mean(result: dict, kind: str) -> float:
    seeds = [str(s) for s in result["seeds"]]
    return 100 * sum(result["test"][s]["per_type_f1"][kind] for s in seeds) / len(seeds)


def caption_use_rows() -> list[str]:
    """Do the captions runs read their captions? Test F1 drop when each post gets another post's caption
    (shuffled) or none (removed), mean over seeds (benchmarks/image_use.py)."""
    stored = _load("image_use") or {}
    names = [name for name in stored if "captions" in name]
    if not names:
        return []
    lines = [
        "Do the captions runs read the captions? (`python benchmarks/image_use.py NAME`: real test posts, each "
        "caption moved to another post or removed; F1 drop, mean over seeds):",
        "",
        "| run | seeds | test F1, true captions | drop, shuffled | drop, removed | drop where the caption names an entity "
        "(shuffled) |",
        "|---|---|---|---|---|---|",
    ]
    for name in names:
        seeds = list(stored[name]["seeds"].values())

        def mean(condition: str, part: str = "all", runs: list = seeds) -> float:
            return 100 * sum(run[condition][part]["f1"] for run in runs) / len(runs)

        # the "caption names a gold entity" split exists for MNER only (entities are what a caption can name)
        names_drop = (
            f"{mean('true', 'names') - mean('shuffled', 'names'):+.2f}" if "names" in seeds[0]["true"] else ""
        )
        lines.append(
            f"| {name} | {len(seeds)} | {mean('true'):.2f} | {mean('true') - mean('shuffled'):+.2f} | "
            f"{mean('true') - mean('removed'):+.2f} | {names_drop} |"
        )
    for name in names:
        lines += _relation_use_rows(name, list(stored[name]["seeds"].values()))
    return lines


def _relation_use_rows(name: str, seeds: list[dict], top: int = 8) -> list[str]:
    """MRE: the same drops for the most frequent gold relations of the test split (mean over seeds)."""
    support = seeds[0]["true"]["all"].get("per_type_support", {})
    if not any(relation.startswith("/") for relation in support):
        return []
    relations = sorted(support, key=lambda r: (-support[r], r))[:top]

    def mean(condition: str, relation: str) -> float:
        return (
            100 * sum(run[condition]["all"]["per_type_f1"].get(relation, 0.0) for run in seeds) / len(seeds)
        )

    lines = [
        "",
        f"{name}, the {top} most frequent test relations (F1 with true captions; drop when shuffled, removed):",
        "",
        "| relation | test instances | F1, true captions | drop, shuffled | drop, removed |",
        "|---|---|---|---|---|",
    ]
    for relation in relations:
        true = mean("true", relation)
        lines.append(
            f"| {relation} | {support[relation]} | {true:.2f} | {true - mean('shuffled', relation):+.2f} | "
            f"{true - mean('removed', relation):+.2f} |"
        )
    return lines


def caption_settings_rows(bench: str = "twitter2017") -> list[str]:
    """MMIB-captions settings compared on dev, seed 1 (the acceptance's "what was tried"): the full rows'
    seed 1 beside the dev-only points ``grid-<bench>-mmib-captions-*`` (test never scored on those)."""
    named = [(f"{bench}-{name}", f"{label} (row)") for name, label in CAPTION_ROWS if "mmib" in name]
    points = sorted(RESULTS.glob(f"grid-{bench}-mmib-captions-*.json"))
    if not points:
        return []
    lines = [
        f"MMIB with captions on {bench}: settings compared on dev, seed 1 (dev-only points never scored on test):",
        "",
        "| setting | variance head | beta1 / beta2 | KL warm-up share | L_rr | L_ar | dev F1 seed 1 | best epoch / run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    entries = [(RESULTS / f"{stem}.json", label) for stem, label in named]
    entries += [
        (path, path.stem.removeprefix(f"grid-{bench}-mmib-captions-") + " (dev only)") for path in points
    ]
    for path, label in entries:
        if not path.exists():
            continue
        result = json.loads(path.read_text())
        if "1" not in result["dev"]:
            continue
        settings = result["hyperparameters"]
        settings = {**settings, **settings.get("model", {})}  # files since the nesting keep model keys apart
        epochs = result.get("epochs_completed", {}).get("1", settings.get("epochs"))
        head = settings.get("logvar_head", "apenc") if settings["use_refinement"] else "-"
        lines.append(
            f"| {label} | {head} | {settings['beta1']} / {settings['beta2']} | "
            f"{settings.get('kl_warmup_ratio', 0.0)} | {'yes' if settings['use_refinement'] else 'no'} | "
            f"{'yes' if settings['use_alignment'] else 'no'} | {100 * result['dev']['1']['f1']:.2f} | "
            f"{result['best_epoch']['1']}/{epochs} |"
        )
    return lines


VARIANCE_HEADS = {  # logvar_head -> (result file, label)
    "apenc": ("synth-ner-full-mmib", "apenc (eq. 7 as written)"),
    "linear": ("synth-ner-full-mmib-linear-logvar", "linear"),
}


def chosen_variance_head() -> str | None:
    """The head with the best mean dev F1 on full synthetic NER (a test holds the library default to it)."""
    found = {head: _load(name) for head, (name, _) in VARIANCE_HEADS.items()}
    found = {head: result for head, result in found.items() if result}
    if len(found) < 2:
        return None
    return max(found, key=lambda head: seed_mean(found[head], "dev", "f1"))


def variance_head_rows() -> list[str]:
    """The variance-head choice: both heads on full synthetic NER, same recipe and seeds; dev decides."""
    chosen = chosen_variance_head()
    if chosen is None:
        return []
    lines = [
        "The variance head on full synthetic NER (MMIB, same recipe and seeds; the default is chosen on dev):",
        "",
        "| log sigma^2 head | seeds | dev F1 (mean) | test F1 | chosen |",
        "|---|---|---|---|---|",
    ]
    for head, (name, label) in VARIANCE_HEADS.items():
        result = _load(name)
        lines.append(
            f"| {label} | {len(result['seeds'])} | {100 * seed_mean(result, 'dev', 'f1'):.2f} | {test_f1(result)} | "
            f"{'yes' if head == chosen else ''} |"
        )
    return lines


def grid_rows() -> list[str]:
    """The dev-only learning-rate grids (benchmarks/lr_grid.py), one table per grid."""
    sys.path.insert(0, str(RESULTS.parent))
    from lr_grid import grid_points, table

    names = sorted(
        {path.stem.rsplit("-lr", 1)[0].removeprefix("grid-") for path in RESULTS.glob("grid-*-lr*.json")}
    )
    return [line for name in names for line in [*table(name, grid_points(name)).splitlines(), ""]][:-1]


BASE_SIZE_ENCODER = "all-mpnet-base-v2"
# The mpnet text-only CRF the headline shows (the grid choice, 8 epochs) and the same rate with a 12-epoch budget.
MPNET_TEXT_ONLY = "twitter2017-mpnet-text-only-converged"
MPNET_TEXT_ONLY_LONGER = "twitter2017-mpnet-text-only-12-epochs"


def _rate(result: dict) -> str:
    """The encoder learning rate as the grid names it: 2e-5, not 2e-05."""
    return f"{result['hyperparameters']['learning_rate']:g}".replace("e-0", "e-")


def _peak_rss_gb(result: dict, seed: str) -> str:
    """The seed's peak RSS; files from before it was kept per seed have the largest over their seeds."""
    per_seed = result.get("peak_rss_mb_per_seed", {})
    return f"{(per_seed[seed] if seed in per_seed else result['peak_rss_mb']) / 1000:.1f}"


def _cpu_cell(result: dict, seed: str) -> str:
    """The CPU the seed trained on, e.g. "AMD EPYC 2.6 GHz"; files from before hardware was kept per seed
    name the machine of their last run."""
    hardware = result.get("seed_hardware", {}).get(seed) or result["hardware"]
    name = hardware["cpu"].replace("(R)", "").replace(" Processor", "").replace("Intel ", "").strip()
    return f"{name} {hardware['cpu_mhz'] / 1000:.1f} GHz" if hardware.get("cpu_mhz") else name


def _curve_cell(curve: list[float] | None) -> str:
    return " ".join(f"{100 * f:.2f}" for f in curve) if curve else "not recorded"


def base_size_rows() -> list[str]:
    """Every all-mpnet-base-v2 run (grid points and rows, benchmarks/mpnet.sh) per seed: its dev curve, the
    test F1 of the dev-selected epoch and what it cost on 2 cores."""
    results = [
        (path.stem, result)
        for path in sorted(RESULTS.glob("*mpnet*.json"))
        if isinstance(result := json.loads(path.read_text()), dict)
        and result.get("text_encoder") == BASE_SIZE_ENCODER
        and "dev" in result
    ]
    if not results:
        return []
    lines = [
        f"Every {BASE_SIZE_ENCODER} run (BERT-base size, `bash benchmarks/mpnet.sh`), per seed: dev F1 after each "
        "epoch, the dev-selected epoch and its test F1 (scored once; grid points never), and the cost on the "
        "2-core machine the seed ran on (training time alone, dev evaluation excluded; each file's "
        "seed_timing_note names what shared the cores):",
        "",
        "| result | encoder lr | seed | dev F1 per epoch | best / run | test F1 | CPU (2 cores) | samples/s | "
        "s per epoch | peak RSS GB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, result in results:
        for seed in [str(s) for s in result["seeds"]]:
            test = result["test"][seed]
            test_cell = "grid point" if test is None else f"{100 * test['f1']:.2f}"
            run = (result.get("epochs_completed") or {}).get(seed, result["hyperparameters"]["epochs"])
            lines.append(
                f"| {name} | {_rate(result)} | {seed} | "
                f"{_curve_cell(result.get('dev_curve', {}).get(seed))} | {result['best_epoch'][seed]}/{run} | "
                f"{test_cell} | {_cpu_cell(result, seed)} | "
                f"{result['train_samples_per_second'][seed]} | {result['train_seconds'][seed] / run:.0f} | "
                f"{_peak_rss_gb(result, seed)} |"
            )
    return lines


def training_speed_rows() -> list[str]:
    """The same-run A/B of the training speed-ups (benchmarks/training_speed.py)."""
    result = _load("training_speed")
    if result is None:
        return []
    base, current = list(next(iter(result["median"].values())))
    lines = [
        f"Training and dev-evaluation speed, {base} against {current} at {result['git_commit'][:7]}, the sides "
        f"alternating in their own processes, {result['rounds']} rounds, medians (MMIB-captions, BLIP-2 captions, "
        "MiniLM, batch 16, one epoch on the first training records; dev: the whole split):",
        "",
        "| workload | train records | samples/s before | after | x | dev records | dev eval s before | after | x |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, sides in result["median"].items():
        passes = result["passes"][name][current][0]
        lines.append(
            f"| {name} | {result['workloads'][name]['train_records']} | "
            f"{sides[base]['train_samples_per_second']} | {sides[current]['train_samples_per_second']} | "
            f"x{result['speedup'][name]['train']} | {passes['dev_records']} | {sides[base]['dev_eval_seconds']} | "
            f"{sides[current]['dev_eval_seconds']} | x{result['speedup'][name]['dev_eval']} |"
        )
    return lines


def setting_speed_rows() -> list[str]:
    """This checkout against itself under a setting (benchmarks/training_speed.py --against): samples/s, dev
    evaluation seconds and the dev F1 of each pass (round r at seed r on both sides)."""
    lines: list[str] = []
    for path in sorted(RESULTS.glob("training_speed-*.json")):
        result = json.loads(path.read_text())
        cpu = result["hardware"]["cpu"]
        lines += [
            f"MMIB-captions training speed against a setting ({path.stem}; BLIP-2 captions, batch 16, one epoch on "
            f"the first training records; {result['rounds']} rounds, the sides alternating in "
            f"their own processes, medians; {cpu}, {result['hardware']['cores']} cores; dev F1 after the one "
            "epoch, per seed, as the trainer scored it and again in fp32):",
            "",
            "| workload | train records | side | samples/s | x | dev eval s (fp32) | dev F1 per seed | dev F1 fp32 |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, sides in result["median"].items():
            base = next(iter(sides))
            for side, median in sides.items():
                passes = result["passes"][name][side]
                speedup = median["train_samples_per_second"] / sides[base]["train_samples_per_second"]
                f1 = ", ".join(f"{p['dev_f1']:.2f} (seed {p['seed']})" for p in passes)
                fp32 = ", ".join(f"{p['dev_f1_fp32']:.2f}" for p in passes if "dev_f1_fp32" in p)
                lines.append(
                    f"| {name} | {result['workloads'][name]['train_records']} | {side} | "
                    f"{median['train_samples_per_second']} | x{speedup:.2f} | {median['dev_eval_seconds']} | "
                    f"{f1} | {fp32} |"
                )
        lines.append("")
    return lines[:-1]


def training_profile_rows() -> list[str]:
    """Where one training step spends its time (benchmarks/training_speed.py --profile --against): seconds
    per part, and the operator groups' shares of self CPU time."""
    lines: list[str] = []
    for path in sorted(RESULTS.glob("training_profile-*.json")):
        result = json.loads(path.read_text())
        sides = result["sides"]
        first = next(iter(sides.values()))
        groups = list(first["operators"]["groups"])
        # Files written before "profiled_steps" was recorded used the script's default then, 3 steps.
        profiled = first.get("profiled_steps", 3)
        lines += [
            f"One MMIB-captions training step of {result['workload']} ({first['text_encoder']}, BLIP-2 captions, "
            f"batch 16, mean of "
            f"{first['steps']} steps; operator shares from torch.profiler over {profiled} more; "
            f"{result['hardware']['cpu']}, {result['hardware']['cores']} cores):",
            "",
            "| side | s/step | collate | forward | backward | optimiser | " + " | ".join(groups) + " |",
            "|---|" + "---|" * (5 + len(groups)),
        ]
        for side, measured in sides.items():
            parts = measured["seconds_per_step"]
            shares = measured["operators"]["groups"]
            lines.append(
                f"| {side} | {sum(parts.values()):.2f} | "
                + " | ".join(f"{parts[k]:.2f}" for k in ("collate", "forward", "backward", "optimizer"))
                + " | "
                + " | ".join(f"{100 * shares[g]:.0f}%" for g in groups)
                + " |"
            )
        lines.append("")
    return lines[:-1]


def captioner_screen_rows() -> list[str]:
    """MNRE's captioner, chosen on dev by the pair baseline (benchmarks/captioner_screen.py)."""
    if str(RESULTS.parent) not in sys.path:
        sys.path.insert(0, str(RESULTS.parent))
    import captioner_screen

    try:
        points = captioner_screen.screen_points()
    except SystemExit:
        return []
    return captioner_screen.table(points).splitlines()


# MNRE with captions: each row against the text-only marker classifier of the same recipe
MNRE_CAPTION_ROWS = (
    ("mnre-text-only-markers-converged", "text-only, entity markers"),
    ("mnre-text-caption-pair", "text + caption as a sentence pair, markers in the text"),
    ("mnre-mmib-captions", "MMIB, captions as the image side (linear head), markers"),
    ("mnre-mmib-captions-no-rr", "MMIB captions, w/o L_rr"),
    ("mnre-mmib-captions-no-ar", "MMIB captions, w/o L_ar"),
    ("mnre-mmib-captions-blip2", "MMIB captions, BLIP-2 (the Twitter captioner)"),
)


def mnre_caption_rows() -> list[str]:
    found = _trained(MNRE_CAPTION_ROWS)
    base = found.get("mnre-text-only-markers-converged")
    if base is None or len(found) < 2:
        return []
    settings = base["hyperparameters"]
    lines = [
        "MNRE with captions of the real photos (not the paper's pixel setting; micro F1 without `None`; same "
        f"recipe for every row: entity markers, encoder lr {settings['learning_rate']}, {settings['epochs']} "
        f"epochs at batch {settings['batch_size']}, patience {settings['patience']}, "
        f"{settings.get('model', settings).get('caption_max_tokens', 32)} caption sub-words):",
        "",
        "| row | captioner | seeds | test F1 | dev F1 | vs text-only | 2 x larger std | beyond it? | best epoch / run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, label in MNRE_CAPTION_ROWS:
        result = found.get(name)
        if result is None:
            continue
        captioner = "-" if result is base else CAPTIONER_NAMES.get(result.get("captioner") or "", "-")
        dev = f"{100 * seed_mean(result, 'dev', 'f1'):.2f}"
        lines.append(
            f"| {label} | {captioner} | {len(result['seeds'])} | {test_f1(result)} | {dev} | "
            f"{_against_cells(result, base)} | {best_epochs(result)} |"
        )
    return lines


def protocol_gap_rows() -> list[str]:
    """What selecting on test, as the released MNER code does, would add: runs that scored test after every
    epoch (score_test_each_epoch), their dev-selected test F1 beside the best test F1 over their epochs."""
    found = [
        (path.stem, json.loads(path.read_text()))
        for path in sorted(RESULTS.glob("*.json"))
        # the long-budget rows score test every epoch of every seed: their own table shows the gap
        if not path.stem.startswith(("beta-", "screen-", "grid-", "synth-ner-small-long-"))
    ]
    found = [
        (name, result) for name, result in found if isinstance(result, dict) and result.get("protocol_gap")
    ]
    if not found:
        return []
    lines = [
        "What selecting on test, as the released MNER code does, would add (seed 1 of each run scored test after "
        "every epoch; selection stayed on dev; the best-test figure is not a result, only the gap is):",
        "",
        "| run | dev-selected epoch | its test F1 (the result) | best-test epoch | best test F1 over the epochs | "
        "gap |",
        "|---|---|---|---|---|---|",
    ]
    for name, result in found:
        for seed, gap in sorted(result["protocol_gap"].items()):
            lines.append(
                f"| {name} (seed {seed}) | {gap['dev_selected_epoch']} | {100 * gap['dev_selected_test_f1']:.2f} | "
                f"{gap['best_test_epoch']} | {100 * gap['best_test_f1']:.2f} | "
                f"{100 * (gap['best_test_f1'] - gap['dev_selected_test_f1']):+.2f} |"
            )
    return lines


# Issue 26: the settings that decide the regularisers, each row against the default on full synthetic NER
# (same data, seeds and 2-epoch recipe); L_ar from benchmarks/regulariser_losses.py (the run folders' logs).
REGULARISER_SETTING_ROWS = [
    ("synth-ner-full-default-rerun", "MMIB default (mlp discriminator, mean pooling, KL 0.1, L_ar 1.0)"),
    ("synth-ner-full-mmib-linear-logvar", "the default as first recorded (another machine, earlier code)"),
    ("synth-ner-full-released-code", "the released code's settings (configs/released-code-twitter2017.yaml)"),
    ("synth-ner-full-released-code-head-lr", "released, with mmib's head learning rate 1e-3"),
    ("synth-ner-full-released-code-paper-weights", "released, with the paper's KL 0.1 and L_ar weight 1.0"),
    ("synth-ner-full-released-code-head-lr-paper-weights", "released, with both put back"),
    ("synth-ner-full-bilinear", "bilinear discriminator (nn.Bilinear, as released)"),
    ("synth-ner-full-first-pooling", "first-position pooling into the discriminator"),
]


def regulariser_setting_rows() -> list[str]:
    found = _trained(REGULARISER_SETTING_ROWS)
    # the base: the default rerun beside these rows (same machine and code), else the recorded default
    base = found.get("synth-ner-full-default-rerun") or found.get("synth-ner-full-mmib-linear-logvar")
    if base is None or len(found) < 2:
        return []
    losses = _load("regulariser_losses") or {}
    lines = [
        "The settings that decide the regularisers, full synthetic NER (3 seeds, 2 epochs at batch 16, dev "
        "selection; L_ar is the unweighted training BCE of the last epoch, min-max over seeds, beside the lowest "
        "any discriminator can reach on this data and ln 2 = 0.693, a discriminator that tells nothing apart):",
        "",
        "| row | seeds | test F1 | dev F1 | vs default | 2 x larger std | beyond it? | L_ar, last epoch | L_ar ceiling |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, label in REGULARISER_SETTING_ROWS:
        result = found.get(name)
        if result is None:
            continue
        dev = f"{100 * seed_mean(result, 'dev', 'f1'):.2f}"
        last, ceiling = _last_alignment(losses.get(name))
        lines.append(
            f"| {label} | {len(result['seeds'])} | {test_f1(result)} | {dev} | {_against_cells(result, base)} | "
            f"{last} | {ceiling} |"
        )
    return lines


# Issue 26: the long budget. Small synthetic NER for 30 epochs (the released code's budget), dev selection,
# patience off, test scored after every epoch so that the released code's selection on test can be shown beside.
LONG_BUDGET_ROWS = [
    ("synth-ner-small-long-mmib", "MMIB"),
    ("synth-ner-small-long-no-rr", "w/o L_rr"),
    ("synth-ner-small-long-no-ar", "w/o L_ar"),
    ("synth-ner-small-long-no-rr-no-ar", "w/o both"),
    ("synth-ner-small-long-released-code", "MMIB, the released code's settings"),
]


def _max_over_epochs(result: dict) -> list[float]:
    """Each seed's best test F1 over its epochs (what selecting on test reports), in the result's seed order."""
    return [result["protocol_gap"][str(seed)]["best_test_f1"] for seed in result["seeds"]]


def _spread_cells(values: list[float], base_values: list[float] | None) -> str:
    """The cells "mean +- std | vs base | beyond 2 x the larger std?" for per-seed F1s (fractions), judged by
    `against` as every other table is; no comparison for the base itself."""
    row = _per_seed_result(values)
    text = test_f1(row)
    if base_values is None:
        return f"{text} | |"
    delta, band, verdict = against(row, _per_seed_result(base_values))
    return f"{text} | {delta:+.2f} | {verdict}" + ("" if band is None else f" (band {band:.2f})")


def _per_seed_result(values: list[float]) -> dict:
    """Per-seed F1s in the shape `test_f1` and `against` read."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"seeds": list(range(len(values))), "test_mean": statistics.mean(values), "test_std": std}


def long_budget_rows() -> list[str]:
    found = _trained(LONG_BUDGET_ROWS)
    base = found.get("synth-ner-small-long-mmib")
    if base is None or len(found) < 2:
        return []
    # compare at the seeds every row has, so that a section stopped part way compares like with like
    common = sorted(set.intersection(*(set(result["seeds"]) for result in found.values())))
    losses = _load("regulariser_losses") or {}
    lines = [
        "The long budget, small synthetic NER (30 epochs at batch 8, the released code's budget; dev selection, "
        f"patience off; seeds {' '.join(map(str, common))}, the ones every row has). Test was also scored after "
        "every epoch, never for selection: the max over epochs is what the released code's selection on test "
        "would report, shown only to measure how much of a gap that selection can make:",
        "",
        "| row | test F1, dev-selected | vs MMIB | beyond 2 sd? | dev-selected epochs | max test F1 over epochs "
        "(test selection) | vs MMIB | beyond 2 sd? | L_ar, last epoch | L_ar ceiling |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    base_selected = [base["test"][str(seed)]["f1"] for seed in common]
    base_max = _max_over_epochs({**base, "seeds": common})
    for name, label in LONG_BUDGET_ROWS:
        result = found.get(name)
        if result is None:
            continue
        at_common = {**result, "seeds": common}
        selected = [result["test"][str(seed)]["f1"] for seed in common]
        is_base = result is base
        epochs = " ".join(str(result["best_epoch"][str(seed)]) for seed in common)
        last, ceiling = _last_alignment(losses.get(name))
        lines.append(
            f"| {label} | {_spread_cells(selected, None if is_base else base_selected)} | {epochs} | "
            f"{_spread_cells(_max_over_epochs(at_common), None if is_base else base_max)} | {last} | {ceiling} |"
        )
    return lines


def _last_alignment(entry: dict | None) -> tuple[str, str]:
    """The last epoch's L_ar over a row's seeds ("min-max"), and its data's ceiling; empty when not logged."""
    if not entry:
        return "run logs not kept", ""
    last = [seed["alignment_by_epoch"][-1] for seed in entry["seeds"].values() if seed["alignment_by_epoch"]]
    ceiling = "" if entry["alignment_ceiling"] is None else f"{entry['alignment_ceiling']:.3f}"
    if not last:
        return "", ceiling
    return f"{min(last):.3f}-{max(last):.3f}", ceiling


def serve_hostile_rows() -> list[str]:
    """mmib serve under hostile images, this checkout against a baseline commit (benchmarks/serve_hostile.py)."""
    result = _load("serve_hostile")
    if result is None:
        return []
    lines = [
        f"`mmib serve` under {result['uploads']} concurrent uploads of a {result['image']} (decodes to "
        f"{result['image'].split(' one-bit')[0]} pixels; this checkout holds at most "
        f"{result['this_checkout_pixel_budget'] / 1e6:.1f} Mpx, {result['this_checkout_pixel_budget_rgb_mb']} MB "
        "at RGB, of decoded images at once):",
        "",
        "| server | answers | seconds for all | idle RSS MB | peak RSS MB | slowest GET /info s | /info requests |",
        "|---|---|---|---|---|---|---|",
    ]
    for side, found in result["sides"].items():
        answers = ", ".join(f"{found['statuses'].count(c)} x {c}" for c in sorted(set(found["statuses"])))
        lines.append(
            f"| {side} | {answers} | {found['seconds']} | {found['idle_rss_mb']:.0f} | {found['peak_rss_mb']:.0f} | "
            f"{found['info_seconds_max']} | {found['info_requests']} |"
        )
    ours = result["sides"]["this checkout"]
    growth = ours["peak_rss_mb"] - ours["idle_rss_mb"]
    lines += [
        "",
        f"This checkout's peak is {growth:.0f} MB above idle against the cap of "
        f"{result['this_checkout_pixel_budget_rgb_mb']} MB of decoded RGB pixels: the cap bounds the pixels held, "
        "not the decoder's working copies (a one-bit image passes through an 8-bit copy on its way to RGB) "
        "nor memory the allocator keeps after a request.",
    ]
    return lines


def throughput_rows() -> list[str]:
    result = _load("throughput")
    if result is None:
        return []
    lines = [
        "| text encoder | variant | parameters (M) | train samples/s (batch 8) | peak RSS MB |",
        "|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['text_encoder']} | {row['variant']} | {row['parameters_millions']} | "
            f"{row['train_samples_per_second']} | {row['peak_rss_mb']:.0f} |"
        )
    return lines


def latency_rows() -> list[str]:
    result = _load("prediction_latency")
    if result is None:
        return []
    runtimes = result.get("runtimes") or {"torch": result}  # files written before the ONNX runtime existed
    repeats = next(iter(runtimes.values())).get("bare_networks", {}).get("repeats")
    lines = [
        f"Prediction on new posts (`benchmarks/prediction_latency.py`, run `{result['run']}`, {result['posts']} "
        f"test posts, {result['posts_with_image']} with an image; detector alone p50 {result['detector_only_ms_p50']} ms"
        + (
            "; onnx: text encoder and CNN exported by `mmib export --format onnx`, run by ONNX Runtime"
            if "onnx" in runtimes
            else ""
        )
        + (
            f"; batched figures are medians of {repeats} interleaved passes, the share the median of the "
            "per-pass shares):"
            if repeats
            else "):"
        ),
        "",
        "| runtime | detector | single post p50 ms | single post p95 ms | batched posts/s (batch size) "
        "| bare networks posts/s | share of bare | share of the networks with the MMIB layers "
        "| single-thread ceiling posts/s | share of ceiling |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for runtime, measured in runtimes.items():
        bare = measured.get("bare_networks", {})
        for key, label in (("with_detector", "SSD-MobileNetV2"), ("without_detector", "none (whole image)")):
            row = measured[key]
            bound = bare.get(f"posts_per_second_{key}", "")
            share = f"{100 * row['share_of_bare_networks']:.0f} %" if "share_of_bare_networks" in row else ""
            layers = row.get("share_of_networks_with_mmib_layers")
            ceiling = measured.get("single_thread_ceiling", {}).get(f"ceiling_posts_per_second_{key}", "")
            of_ceiling = row.get("share_of_single_thread_ceiling")
            lines.append(
                f"| {runtime} | {label} | {row['single_post_ms_p50']} | {row['single_post_ms_p95']} | "
                f"{row['batched_posts_per_second']} ({row['batch_size']}) | {bound} | {share} | "
                f"{'' if layers is None else f'{100 * layers:.0f} %'} | {ceiling} | "
                f"{'' if of_ceiling is None else f'{100 * of_ceiling:.0f} %'} |"
            )
    for runtime, measured in runtimes.items():
        bare = measured.get("bare_networks")
        if bare:
            if "mmib_layers_s" in bare:
                outside = (
                    f"; outside the bound, on the same batches, the MMIB layers {bare['mmib_layers_s']} s and the CRF "
                    f"(Viterbi and marginals) {bare['crf_s']} s."
                )
            elif "mmib_layers_and_crf_s" in bare:
                outside = f"; outside the bound, the MMIB layers and CRF on the same batches {bare['mmib_layers_and_crf_s']} s."
            else:
                outside = "."
            lines += [
                "",
                f"Bare networks ({runtime}) on the same posts, inputs prepared beforehand: text encoder "
                f"{bare['text_encoder_s']} s, CNN {bare['cnn_s']} s on the whole images ({bare['cnn_with_crops_s']} s "
                f"with the {bare['regions_with_detector']} whole images and crops), detector {bare['detector_s']} s"
                + outside,
            ]
        if ceiling := measured.get("single_thread_ceiling"):
            single = ceiling["single_thread"]
            lines += [
                "",
                f"Single-thread ceiling ({runtime}): every part on one thread (torch, ONNX Runtime and the "
                f"detector alike), text encoder {single['text_encoder_s']} s, CNN {single['cnn_s']} s "
                f"({single['cnn_with_crops_s']} s with the crops), detector {single['detector_s']} s, MMIB layers "
                f"{single['mmib_layers_s']} s, CRF {single['crf_s']} s: {ceiling['cpu_seconds_with_detector']} CPU "
                f"seconds with the detector and {ceiling['cpu_seconds_without_detector']} without, at least; spread "
                f"perfectly over {ceiling['cores']} cores, at most {ceiling['ceiling_posts_per_second_with_detector']} "
                f"and {ceiling['ceiling_posts_per_second_without_detector']} posts/s.",
            ]
    return lines + baseline_rows()


def baseline_rows() -> list[str]:
    """The same machine, the same run: this checkout's prediction against an earlier commit's."""
    result = _load("prediction_baseline")
    if result is None:
        return []
    sides = result["posts_per_second"]
    lines = [
        "",
        f"Against the code the prediction-speed work started from, on the same machine in one run "
        f"(`benchmarks/prediction_baseline.py`, commit {result['baseline_commit'][:7]} from a git worktree; "
        f"{result['rounds']} alternating rounds of {result['repeats']} passes per side, medians; "
        f"{result['posts']} posts):",
        "",
        "| code | with the detector, posts/s | x baseline | without, posts/s | x baseline |",
        "|---|---|---|---|---|",
    ]
    for side, found in sides.items():
        gain = result["speedup_over_baseline"].get(side, {})
        lines.append(
            f"| {side} | {found['with_detector']} | {gain.get('with_detector', 1.0):.2f} | "
            f"{found['without_detector']} | {gain.get('without_detector', 1.0):.2f} |"
        )
    return lines


def int8_rows() -> list[str]:
    result = _load("int8_tradeoff")
    if result is None:
        return []
    lines = [
        f"Dynamic int8 linear layers against fp32 (`benchmarks/int8_tradeoff.py`; posts/s on {result['posts']} "
        "synthetic test posts, whole image; F1 on each run's test split):",
        "",
        "| | fp32 | int8, text encoder | int8, all linear layers |",
        "|---|---|---|---|",
        f"| posts/s | {result['fp32_posts_per_second']} | {result['int8_text-encoder_posts_per_second']} "
        f"(x{result['int8_text-encoder_speedup']}) | {result['int8_all_posts_per_second']} "
        f"(x{result['int8_all_speedup']}) |",
    ]
    for run, f1 in result["f1"].items():
        lines.append(
            f"| test F1, `{run}` | {f1['fp32']} | {f1['int8_text-encoder']} (-{f1['int8_text-encoder_cost']}) | "
            f"{f1['int8_all']} (-{f1['int8_all_cost']}) |"
        )
    return lines


def scaling_rows() -> list[str]:
    result = _load("scaling")
    if result is None:
        return []
    lines = [
        f"Training by processes on this CPU (`benchmarks/scaling.py`, MMIB MiniLM, {result['samples']} synthetic "
        "posts, effective batch 16; the same cores shared):",
        "",
        "| device | processes | precision | effective batch | train samples/s |",
        "|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['device']} | {row['processes']} | {row['precision']} | {row['effective_batch']} | "
            f"{row['samples_per_second']} |"
        )
    return lines


def serving_rows() -> list[str]:
    result = _load("serving")
    if result is None:
        return []
    rounds = f" ({result['rounds']} rounds of the test posts)" if "rounds" in result else ""
    return [
        f"Serving (`benchmarks/serving.py`, run `{result['run']}`, {result['posts']} requests{rounds} of synthetic "
        f"test posts with images, whole image, no detector; requests batched by the server):",
        "",
        "| offline batched posts/s (batch) | `mmib serve`, 1 client | `mmib serve`, 8 clients | 8 clients / offline |",
        "|---|---|---|---|",
        f"| {result['offline_batched_posts_per_second']} ({result['offline_batch_size']}) | "
        f"{result['server_1_client_posts_per_second']} | {result['server_8_clients_posts_per_second']} | "
        f"{100 * result['server_8_clients_share_of_offline']:.0f} % |",
    ]


def reproducibility_rows() -> list[str]:
    """The latest check of each result file (benchmarks/reproduce.py appends one per rerun)."""
    checks = _load("reproducibility")
    if checks is None:
        return []
    latest = {check["result"]: check for check in checks}
    lines = [
        "Reruns of a recorded command (`python benchmarks/reproduce.py RESULT --seed N`, same machine type):",
        "",
        "| result | seed | dev F1 recorded | dev F1 rerun | test F1 recorded | test F1 rerun | within 0.1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, check in sorted(latest.items()):
        lines.append(
            f"| {name} | {check['seed']} | {check['dev_f1_recorded']} | {check['dev_f1_rerun']} | "
            f"{check['test_f1_recorded']} | {check['test_f1_rerun']} | {'yes' if check['within_tolerance'] else 'NO'} |"
        )
    notes = [f"- {name}: {check['note']}." for name, check in sorted(latest.items()) if check.get("note")]
    if notes:
        lines += ["", *notes]
    rerun = set(latest)
    others = [path.stem for path in result_files() if path.stem not in rerun]
    agreeing = sum(check["within_tolerance"] for check in latest.values())
    lines += [
        "",
        f"{len(rerun)} of {len(rerun) + len(others)} result files have had one seed rerun "
        f"({agreeing} of them within 0.1 F1 of the record); not rerun: {', '.join(others) or 'none'}.",
    ]
    return lines


def _f1_with(result: dict, detail: str) -> str:
    """Test F1 with a parenthesised detail, e.g. "70.94 (1 seed; dev 69.65)"."""
    figure = test_f1(result)
    return figure[:-1] + f"; {detail})" if figure.endswith(")") else f"{figure} ({detail})"


def _dev(result: dict, seed: str = "1") -> str:
    return f"{100 * result['dev'][seed]['f1']:.2f}"


def _epochs(result: dict, seed: str = "1") -> str:
    run = (result.get("epochs_completed") or {}).get(seed, result["hyperparameters"].get("epochs"))
    return f"best epoch {result['best_epoch'][seed]} of {run}"


def _dev_and_epochs(result: dict) -> str:
    """Each seed's dev F1 and best epoch: "dev 88.76, best epoch 8 of 8" for one seed, "seed 1: ...; seed 2:
    ..." for several (a row's mean test F1 has no single dev figure beside it)."""
    seeds = [str(seed) for seed in result["seeds"]]
    if len(seeds) == 1:
        return f"dev {_dev(result, seeds[0])}, {_epochs(result, seeds[0])}"
    return "; ".join(f"seed {seed}: dev {_dev(result, seed)}, {_epochs(result, seed)}" for seed in seeds)


def _margin(a: dict, b: dict) -> str:
    margin = 100 * (a["test_mean"] - b["test_mean"])
    band = 100 * max(a["test_std"], b["test_std"])
    times = f", {margin / band:.0f} times the larger seed std" if band and len(a["seeds"]) > 1 else ""
    return f"a margin of {margin:.1f} F1{times}"


def _oracles(key: str) -> str:
    layer = _load("data_layer") or {}
    oracle = layer.get("synthetic", {}).get(key, {}).get("oracles", {}).get("test")
    if not oracle:
        return ""
    return f"; test oracles: text-only {100 * oracle['text_only_f1']:.2f}, multimodal {100 * oracle['multimodal_f1']:.2f}"


def _shuffle_drop(name: str, part: str = "image") -> float | None:
    """Mean F1 drop over seeds on ``part`` instances when images are shuffled across posts."""
    seeds = ((_load("image_use") or {}).get(name) or {}).get("seeds", {})
    drops = [100 * (s["true"][part]["f1"] - s["shuffled"][part]["f1"]) for s in seeds.values()]
    return sum(drops) / len(drops) if drops else None


def findings() -> list[str]:
    """The sentences that read the tables, generated from the same files (so that none goes stale)."""
    lines: list[str] = []

    def published(result: dict) -> str:
        bench = next((d for d in ("twitter2015", "twitter2017", "mnre") if d in result["dataset"]), None)
        value = PUBLISHED.get((bench, "mmib" if result["variant"] != "text-only" else "text-only"))
        return f"{value:.2f}" if value else "-"

    full_mmib, full_text = _load("synth-ner-full-mmib"), _load("synth-ner-full-text-only")
    small_mmib, small_text = _load("synth-ner-small-mmib"), _load("synth-ner-small-text-only")
    if full_mmib and full_text:
        sizes = full_mmib["split_sizes"]
        line = (
            f"- **Synthetic NER, full size** ({sizes['train']}/{sizes['dev']}/{sizes['test']} posts, "
            f"{full_mmib['hyperparameters']['epochs']} epochs at batch {full_mmib['hyperparameters']['batch_size']}"
            f"{_oracles('ner-full')}): MMIB {test_f1(full_mmib)} against text-only {test_f1(full_text)}, "
            f"{_margin(full_mmib, full_text)}."
        )
        if small_mmib and small_text:
            line += (
                f" Small size ({small_mmib['split_sizes']['train']} training posts, "
                f"{small_mmib['hyperparameters']['epochs']} epochs{_oracles('ner-small')}): "
                f"{test_f1(small_mmib)} against {test_f1(small_text)}."
            )
        drop = _shuffle_drop("synth-ner-small-mmib")
        if drop is not None:
            line += (
                f" Shuffling images across posts costs synth-ner-small-mmib {drop:.1f} F1 on image-decided "
                "instances (`python benchmarks/image_use.py synth-ner-small-mmib`)."
            )
        lines.append(line)
    t15, t15_mmib, t15_tuned = (
        _load("twitter2015-text-only"),
        _load("twitter2015-mmib"),
        _load("twitter2015-text-only-tuned"),
    )
    if t15 and t15_mmib:
        line = (
            f"- **Twitter-2015** (text only here; {t15['hyperparameters']['epochs']} epochs at batch "
            f"{t15['hyperparameters']['batch_size']}): the text-only MiniLM CRF reaches {test_f1(t15)} against the "
            f"published BERT-base CRF's {published(t15)}, image-absent MMIB {test_f1(t15_mmib)} (published "
            f"multimodal MMIB {published(t15_mmib)})."
        )
        if t15_tuned:
            line += (
                f" With the captions recipe (`twitter2015-text-only-tuned`) it reaches "
                f"{_f1_with(t15_tuned, _dev_and_epochs(t15_tuned))}."
            )
        lines.append(line)
    mnre, mnre_mmib, markers = _load("mnre-text-only"), _load("mnre-mmib"), _load("mnre-text-only-markers")
    if mnre and mnre_mmib:
        line = (
            f"- **MNRE** (text only here; {mnre['hyperparameters']['epochs']} epochs at batch "
            f"{mnre['hyperparameters']['batch_size']}; micro F1 without `None`): the text-only MiniLM classifier "
            f"reaches {_f1_with(mnre, f'dev {_dev(mnre)}')} against the paper's text-only MTB {published(mnre)} and "
            f"multimodal MMIB {published(mnre_mmib)}; image-absent MMIB {_f1_with(mnre_mmib, f'dev {_dev(mnre_mmib)}')}."
        )
        if markers:
            line += (
                f" With head and tail marked in the text (`--entity-markers`, not the paper's pooled head) the "
                f"text-only classifier reaches {_f1_with(markers, _dev_and_epochs(markers))}."
            )
        mmib_markers = _load("mnre-mmib-markers")
        if markers and mmib_markers:
            line += (
                f" Image-absent MMIB with the same markers and recipe: "
                f"{_f1_with(mmib_markers, _dev_and_epochs(mmib_markers))}."
            )
        lines.append(line)
    t17, t17_mmib, mpnet, converged, longer = (
        _load("twitter2017-text-only"),
        _load("twitter2017-mmib"),
        _load("twitter2017-mpnet-text-only"),
        _load(MPNET_TEXT_ONLY),
        _load(MPNET_TEXT_ONLY_LONGER),
    )
    if t17 and t17_mmib:
        line = (
            f"- **Twitter-2017** (text only here; {t17['hyperparameters']['epochs']} epochs): the text-only MiniLM "
            f"CRF reaches {test_f1(t17)} against the published BERT-base CRF's {published(t17)}; image-absent "
            f"MMIB {test_f1(t17_mmib)}."
        )
        if mpnet:
            seconds = max(mpnet["train_seconds"].values())
            line += (
                f" With all-mpnet-base-v2 (BERT-base size; {mpnet['hyperparameters']['epochs']} epochs, "
                f"{seconds:.0f} s of training, peak RSS {mpnet['peak_rss_mb'] / 1000:.1f} GB) the text-only CRF "
                f"reaches {_f1_with(mpnet, f'dev {_dev(mpnet)}')}: "
                f"{100 * (mpnet['test_mean'] - t17['test_mean']):.1f} F1 above the MiniLM row above and "
                f"{100 * mpnet['test_mean'] - float(published(t17)):.1f} above the published "
                f"BERT-base CRF."
            )
        if converged:
            line += (
                f" With the learning rate chosen on dev from a grid (`bash benchmarks/mpnet.sh grid`, "
                f"{_rate(converged)}) the mpnet CRF reaches {_f1_with(converged, _dev_and_epochs(converged))}: "
                f"{100 * converged['test_mean'] - PUBLISHED[('twitter2017', 'mmib')]:+.2f} F1 against the "
                f"published MMIB's {PUBLISHED[('twitter2017', 'mmib')]:.2f}, which was selected on test."
            )
        if converged and longer:  # the same rate with room for patience (`mpnet.sh converge`)
            kept = max((converged, longer), key=lambda result: result["dev"]["1"]["f1"])
            line += (
                f" With a {longer['hyperparameters']['epochs']}-epoch budget at the same rate it reaches "
                f"{_f1_with(longer, _dev_and_epochs(longer))}; selecting between the two seed-1 runs on dev "
                f"would keep the {kept['hyperparameters']['epochs']}-epoch one."
            )
        lines.append(line)
    return ["What the tables say (generated from the same files):", "", *lines] if lines else []


README = RESULTS.parents[1] / "README.md"


def data_layer_rows() -> list[str]:
    """The synthetic benchmark's sizes, generation time and oracle scores (benchmarks/data_layer.py)."""
    layer = _load("data_layer")
    if not layer:
        return []
    lines = [
        "| | size | generation (2 cores) | text-only oracle F1 (test) | multimodal oracle F1 (test) |",
        "|---|---|---|---|---|",
    ]
    for key in ("ner-full", "re-full", "ner-small", "re-small"):
        entry = layer["synthetic"].get(key)
        if entry is None:
            continue
        task, size = key.split("-")
        sizes = entry["split_sizes"]
        unit = "posts" if task == "ner" else "instances"
        oracle = entry["oracles"]["test"]
        lines.append(
            f"| `--task {task} --size {size}` | {sizes['train']} / {sizes['dev']} / {sizes['test']} {unit} | "
            f"{entry['generation_seconds']:.1f} s | {oracle['text_only_f1']:.3f} | {oracle['multimodal_f1']:.3f} |"
        )
    return lines


def block() -> str:
    parts = [
        rows(),
        caption_rows(),
        caption_use_rows(),
        caption_settings_rows(),
        captioner_screen_rows(),
        mnre_caption_rows(),
        protocol_gap_rows(),
        regulariser_setting_rows(),
        long_budget_rows(),
        variance_head_rows(),
        grid_rows(),
        base_size_rows(),
        training_speed_rows(),
        training_profile_rows(),
        setting_speed_rows(),
        throughput_rows(),
        latency_rows(),
        int8_rows(),
        serving_rows(),
        serve_hostile_rows(),
        scaling_rows(),
        reproducibility_rows(),
        findings(),
    ]
    return "\n\n".join("\n".join(part) for part in parts if part)


# The README's headline: per benchmark, the row behind each variant at each encoder size (None: not a result of
# that benchmark; a tuple: the first of these that has been written).
HEADLINE_VARIANTS = ("text only", "text + caption pair", "MMIB")
HEADLINE_ENCODERS = ("MiniLM-L6", "mpnet-base")
HEADLINE = [
    ("Twitter-2015", "twitter2015",
     ("twitter2015-text-only-tuned", "twitter2015-text-caption-pair", "twitter2015-mmib-captions-linear-logvar"),
     (None, None, None)),
    ("Twitter-2017", "twitter2017",
     ("twitter2017-text-only-tuned", "twitter2017-text-caption-pair", "twitter2017-mmib-captions-linear-logvar"),
     ((MPNET_TEXT_ONLY, "twitter2017-mpnet-text-only"),
      "twitter2017-mpnet-text-caption-pair", "twitter2017-mpnet-mmib-captions")),
    ("MNRE (head and tail marked in the text)", "mnre",
     ("mnre-text-only-markers-converged", "mnre-text-caption-pair", "mnre-mmib-captions"),
     ("mnre-mpnet-text-only-markers", None, "mnre-mpnet-mmib-captions")),
    ("synthetic NER, full size (pixels)", None,
     ("synth-ner-full-text-only", None, "synth-ner-full-mmib-linear-logvar"), (None, None, None)),
    ("synthetic MRE, full size (pixels)", None,
     ("synth-re-full-text-only", None, "synth-re-full-mmib"), (None, None, None)),
]  # fmt: skip
NOT_CONVERGED = "\u2021"  # a cell whose best dev epoch was the last one run (some seed): still rising


def headline_cell(names: str | tuple[str, ...] | None) -> str:
    """Test F1 of the first written result among ``names``; empty where the benchmark has no such row."""
    if names is None:
        return ""
    for name in (names,) if isinstance(names, str) else names:
        result = _load(name)
        if result:
            return test_f1(result) + (f" {NOT_CONVERGED}" if best_epochs(result).endswith("(last)") else "")
    return "not run yet"


def headline_rows() -> list[str]:
    """Benchmark x variant x encoder size against the published figures: test F1 of the dev-selected
    checkpoint."""
    header = [f"{encoder}: {variant}" for encoder in HEADLINE_ENCODERS for variant in HEADLINE_VARIANTS]
    lines = [
        "| benchmark | " + " | ".join(header) + " | published text-only | published MMIB |",
        "|---|" + "---|" * (len(header) + 2),
    ]
    for label, bench, small, base in HEADLINE:
        cells = [headline_cell(names) for names in (*small, *base)]
        published = [PUBLISHED.get((bench, variant)) for variant in ("text-only", "mmib")]
        cells += [f"{value:.2f}" if value else "" for value in published]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "MiniLM-L6: all-MiniLM-L6-v2 (6 layers, 384-d); mpnet-base: all-mpnet-base-v2 (12 layers, 768-d, the "
        "size of the BERT-base encoders behind the published figures). On the real benchmarks MMIB's image side is "
        f"captions (BLIP-2 for Twitter, CogVLM for MNRE). {NOT_CONVERGED}: for some seed the best dev epoch was the "
        "last one run (dev F1 still rising when the budget ended).",
    ]
    shown, longer = _load(MPNET_TEXT_ONLY), _load(MPNET_TEXT_ONLY_LONGER)
    if shown and longer:  # the shown cell's budget ended on its best epoch: what a longer one did
        lines[-1] += (
            f" Twitter-2017 mpnet-base text only: the same rate with a {longer['hyperparameters']['epochs']}-epoch "
            f"budget ({_epochs(longer)}) reaches {test_f1(longer)}, its dev {_dev(longer)} against {_dev(shown)} for "
            f"the shown row's seed 1."
        )
    return lines


RESULTS_DOC = RESULTS.parents[1] / "RESULTS.md"
RESULTS_INTRO = """# Results

Generated by `python benchmarks/summarize.py --write-readme` from the result files in `benchmarks/results/`
(one per row, with seeds, per-seed dev/test figures, hyperparameters, hardware, command and commit; rows
are produced by `benchmarks/train_eval.py` and the other scripts named beside each table); a test fails
when this file and the result files disagree. Test is scored once per seed on the best-dev checkpoint.
Hardware: 2-core x86-64 VMs (AMD EPYC or Intel Xeon; each result file records its CPU per seed), torch
2.13.0 CPU build, no GPU. Encoders: all-MiniLM-L6-v2 and EfficientNet-Lite0 unless a row names another.
What each table shows, claim by claim: [reports/ANALYSIS.md](reports/ANALYSIS.md).
"""


RESULTS_NOTES = Path(__file__).resolve().parent / "results_notes.md"  # hand-written, appended as it is


def results_document() -> str:
    return f"{RESULTS_INTRO}\n{block()}\n\n{RESULTS_NOTES.read_text()}"


# Each generated block of the README, between <!-- NAME:start --> and <!-- NAME:end -->.
BLOCKS = {"headline": lambda: "\n".join(headline_rows()), "data-layer": lambda: "\n".join(data_layer_rows())}


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def readme_block(content: str, name: str) -> str:
    """The text between the README's markers of one block."""
    start, end = markers(name)
    if content.count(start) != 1 or content.count(end) != 1:
        raise SystemExit(f"{README}: expected one {start} and one {end} marker")
    return content.split(start)[1].split(end)[0].strip("\n")


def main() -> None:
    generated = {name: make() for name, make in BLOCKS.items()}
    document = results_document()
    content = README.read_text()
    if "--check" in sys.argv:
        stale = [
            f"README block {name}" for name, text in generated.items() if readme_block(content, name) != text
        ]
        if not RESULTS_DOC.exists() or RESULTS_DOC.read_text() != document:
            stale.append(RESULTS_DOC.name)
        if stale:
            print(
                f"{', '.join(stale)} differ(s) from benchmarks/results: run python "
                "benchmarks/summarize.py --write-readme",
                file=sys.stderr,
            )
            sys.exit(1)
        print("RESULTS.md and the README's generated blocks match benchmarks/results")
        return
    if "--write-readme" in sys.argv:
        for name, text in generated.items():
            readme_block(content, name)
            start, end = markers(name)
            head, rest = content.split(start)
            _, tail = rest.split(end)
            content = f"{head}{start}\n{text}\n{end}{tail}"
        README.write_text(content)
        RESULTS_DOC.write_text(document)
    print(document)


if __name__ == "__main__":
    main()
