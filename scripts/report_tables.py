"""The Markdown tables of README.md and docs/EXPERIMENTS.md, read from `results/` (nothing is computed here).

    python scripts/report_tables.py glance|yardstick|gan|vae|data
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from handgen import (
    GAN_LABEL,
    REAL,
    REAL_FLOOR,
    DetectorConfig,
    read_checkpoint,
    read_out_of_fold,
    read_rows,
    schemes_in,
    with_cpu_minutes,
)

FULL_DATA = 7500  # the generators' training hands


def markdown(rows: list[dict]) -> str:
    """Rows of equal keys as a Markdown table."""
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(str(row[column]) for column in columns) + " |" for row in rows])


def interval(row: dict, key: str, low: str, high: str) -> str:
    """`0.79 (0.74-0.83)`, or an empty cell when the row has no such figure."""
    if key not in row:
        return ""
    return f"{row[key]:.2f} ({row[low]:.2f}-{row[high]:.2f})"


def realism_cells(row: dict) -> dict:
    return {"confirmation judge's fool rate (95% CI)": interval(row, "confirmation_fool_rate",
                                                                 "confirmation_fool_rate_low",
                                                                 "confirmation_fool_rate_high"),
            "judge's fool rate": f"{row['fool_rate']:.2f}" if "fool_rate" in row else "",
            "two-sample accuracy (95% CI)": interval(row, "two_sample_accuracy", "two_sample_low", "two_sample_high"),
            "copy share": f"{row['copy_share']:.3f}"}


def latest_by_set(path: str) -> list[dict]:
    """The latest row of each set in a yardstick file, the real floor last."""
    latest = {row["set"]: row for row in read_rows(path)}
    return [row for name, row in latest.items() if name != REAL_FLOOR] + [latest[REAL_FLOOR]]


def yardstick_table() -> str:
    return markdown([{"set": row["set"], **realism_cells(row)} for row in latest_by_set("results/yardstick.jsonl")])


def training_minutes(checkpoint: str) -> str:
    """Minutes of training recorded in a checkpoint's history (on the machine that trained it)."""
    return f"{sum(row['seconds'] for row in read_checkpoint(checkpoint)['history']) / 60:.1f}"


def glance_table() -> str:
    """The deliverables beside the real floor, then the detector's cross-validation, with training times."""
    quality = {row["set"]: row for row in latest_by_set("results/quality.jsonl")}
    sets = {"VAE_hands/ (300)": ("VAE_hands/", "checkpoints/vae.pt"),
            "VAE, 2000 fresh samples": ("VAE, 2000 fresh samples", None),
            "GAN_hands/ (300)": ("GAN_hands/", "checkpoints/gan.pt"),
            "GAN, 2000 fresh samples": ("GAN, 2000 fresh samples", None),
            "real hands (floor)": (REAL_FLOOR, None)}
    rows = [{"set": name, **realism_cells(quality[key]),
             "training, min": training_minutes(checkpoint) if checkpoint else ""}
            for name, (key, checkpoint) in sets.items()]
    repeats = [row["two_sample_accuracy"] for name, row in quality.items()
               if name.startswith("GAN, 2000 fresh samples")]
    generators = markdown(rows) + (f"\n\nGAN two-sample accuracy over {len(repeats)} repeats: "
                                   + ", ".join(f"{value:.2f}" for value in repeats)
                                   + f"; mean {sum(repeats) / len(repeats):.2f}")
    detector = []
    for scheme in schemes_in("results/detector_cv.jsonl"):
        result = read_out_of_fold("results/detector_cv.jsonl", scheme)
        offsets = DetectorConfig().decision_offsets
        summary, matrix = result.summary(offsets), result.confusion(offsets, once=True)
        real, vae, gan = result.recalls(offsets, by_model=True)
        folds = f"{len(result.folds)} fold{'s' * (len(result.folds) > 1)}"
        detector.append({"students' fakes held out": f"{scheme} ({folds}, {summary['images']})",
                         "real hands right": f"{real:.3f}", "VAE, by model": f"{vae:.3f}",
                         "GAN, by model": f"{gan:.3f}",
                         "balanced, by image": f"{result.balanced_accuracy(offsets):.3f}",
                         "balanced, by model": f"{result.balanced_accuracy(offsets, by_model=True):.3f}",
                         "GAN hands called real": int(matrix[GAN_LABEL, REAL])})
    return generators + "\n\n" + markdown(detector)


def curve_table(family: str) -> str:
    """The last point of each recipe of a family trained on every training hand, with its latest two-sample test."""
    families = ("vae", "vqvae") if family == "vae" else (family,)
    rows = [row for row in with_cpu_minutes(read_rows("results/realism_curves.jsonl"))
            if row["family"] in families and row.get("train_size", FULL_DATA) == FULL_DATA]
    last, two_sample = {}, {}
    for row in rows:
        last[row["recipe"]] = row
        if "two_sample_accuracy" in row:
            two_sample[row["recipe"]] = row
    table = []
    for recipe, row in last.items():
        cells = {"recipe": recipe, "epochs": row["epoch"], "CPU-min": f"{row['cpu_minutes']:.1f}",
                 "fool rate": f"{row['fool_rate']:.3f}" if "fool_rate" in row else ""}
        if family == "gan":
            cells["fool rate, raw G"] = f"{row['fool_rate_raw']:.3f}" if "fool_rate_raw" in row else ""
        else:
            cells["ceiling (decoded held-out)"] = f"{row['fool_rate_reconstruction']:.3f}" \
                if "fool_rate_reconstruction" in row else ""
        tested = two_sample.get(recipe)
        cells["two-sample accuracy"] = f"{tested['two_sample_accuracy']:.3f} at {tested['epoch']}" if tested else ""
        cells["copy share"] = f"{row['copy_share']:.3f}" if "copy_share" in row else ""
        table.append(cells)
    return markdown(table)


def data_table() -> str:
    """GAN realism against the number of training hands at one budget of images seen, and against budget."""
    rows = with_cpu_minutes(read_rows("results/realism_curves.jsonl", family="gan"))
    final = [row for row in rows if row["recipe"] == "final"]
    sized = [row for row in rows if row["recipe"].startswith("final, ")]
    budget = max(row["images_seen"] for row in sized)
    table = []
    for recipe in dict.fromkeys(row["recipe"] for row in sized + final):
        curve = [row for row in sized + final if row["recipe"] == recipe]
        at_budget = min(curve, key=lambda row: abs(row["images_seen"] - budget))
        table.append({"training hands": at_budget["train_size"], "epochs": at_budget["epoch"],
                      "images seen (k)": round(at_budget["images_seen"] / 1000),
                      "fool rate": f"{at_budget['fool_rate']:.3f}", "copy share": f"{at_budget['copy_share']:.3f}",
                      "two-sample accuracy": f"{at_budget['two_sample_accuracy']:.3f}"
                      if "two_sample_accuracy" in at_budget else ""})
    return markdown(sorted(table, key=lambda row: row["training hands"]))


TABLES: dict[str, Callable[[], str]] = {"glance": glance_table, "yardstick": yardstick_table,
                                        "gan": lambda: curve_table("gan"), "vae": lambda: curve_table("vae"),
                                        "data": data_table}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", choices=TABLES)
    print(TABLES[parser.parse_args().table]())


if __name__ == "__main__":
    main()
