"""Figures for the notebooks: live loss curves, loss histories, image grids, studies, confusion matrices."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from .sample import image_grid


class LiveLosses:
    """Per-epoch training callback that redraws livelossplot curves; closes its figures when done.

    livelossplot groups logs by name; `groups` maps a panel title to the log names drawn in it.
    """

    def __init__(self, groups: dict[str, list[str]] | None = None):
        self.groups = groups
        self._new_plot()

    def _new_plot(self) -> None:
        from livelossplot import PlotLosses  # needs IPython; imported lazily so the CLI does not
        from livelossplot.outputs import MatplotlibPlot

        # skip_first=0: the default hides the first two epochs, all there is in a quick run
        outputs = [MatplotlibPlot(skip_first=0, max_cols=3, cell_size=(5, 3.2))]
        groups = {"groups": self.groups} if self.groups else {}
        self.plot = PlotLosses(outputs=outputs, **groups)
        self.epochs_seen = 0

    def _plotted(self, logs: dict[str, float]) -> dict[str, float]:
        """Only the logs named in `groups` (if any): the history also holds e.g. epoch seconds."""
        if not self.groups:
            return dict(logs)
        wanted = {name for names in self.groups.values() for name in names}
        return {name: value for name, value in logs.items() if name in wanted}

    def __call__(self, epoch: int, logs: dict[str, float]) -> None:
        self.plot.update(self._plotted(logs))
        self.epochs_seen += 1
        self.plot.send()
        plt.close("all")  # headless matplotlib keeps every figure alive otherwise

    def show_history(self, history: Sequence[dict[str, float]]) -> None:
        """Draw the whole history, including epochs restored from a checkpoint rather than trained here."""
        if self.epochs_seen < len(history):  # part of the run came from a checkpoint: redraw it all
            self._new_plot()
            for logs in history:
                self.plot.update(self._plotted(logs))
            self.epochs_seen = len(history)
        self.plot.send()
        plt.close("all")


def show_grids(grids: dict[str, torch.Tensor], columns: int = 10, scale: float = 0.4, upscale: int = 1) -> plt.Figure:
    """Side-by-side grids of uint8 images (N, 1, 32, 32), one panel per title; `scale` inches per image, each pixel
    drawn as an `upscale` x `upscale` block (nearest neighbour: no smoothing hides a defect)."""
    rows = max(-(-len(images) // columns) for images in grids.values())
    figure, axes = plt.subplots(1, len(grids), squeeze=False,
                                figsize=(len(grids) * (columns * scale + 0.3), rows * scale + 0.6))
    for axis, (title, images) in zip(axes[0], grids.items()):
        big = images.repeat_interleave(upscale, 2).repeat_interleave(upscale, 3) if upscale > 1 else images
        axis.imshow(image_grid(big, columns=columns, padding=2 * upscale), cmap="gray", vmin=0, vmax=255,
                    interpolation="nearest")
        axis.set_title(title, fontsize=9)
        axis.axis("off")
    figure.tight_layout()
    return figure


def plot_study(study, title: str = "", log: bool = False) -> plt.Figure:
    """An Optuna study in three panels: each trial's score (pruned ones at their last report, failed ones named in
    the legend) with the best so far; the intermediate scores the pruner saw; the parameters' importances (fANOVA).
    `log`: logarithmic score axes, for scores that span orders of magnitude."""
    import optuna

    states = optuna.trial.TrialState
    trials = [t for t in study.trials if t.state in (states.COMPLETE, states.PRUNED)]
    maximise = study.direction == optuna.study.StudyDirection.MAXIMIZE
    figure, (history, curves, importance) = plt.subplots(1, 3, figsize=(15, 3.6))
    complete = [t for t in trials if t.state == states.COMPLETE]
    pruned = [t for t in trials if t.state == states.PRUNED and t.intermediate_values]
    failed = [t for t in study.trials if t.state == states.FAIL]
    history.scatter([t.number for t in complete], [t.value for t in complete], label=f"complete ({len(complete)})",
                    color="C0")
    history.scatter([t.number for t in pruned], [t.intermediate_values[max(t.intermediate_values)] for t in pruned],
                    marker="x", color="gray", label=f"pruned, at its last report ({len(pruned)})")
    if failed:
        history.plot([], [], " ", label=f"failed ({len(failed)}): no score")
    if complete:
        best, running = [], None
        for trial in sorted(complete, key=lambda t: t.number):
            running = trial.value if running is None else (max if maximise else min)(running, trial.value)
            best.append((trial.number, running))
        history.step(*zip(*best), where="post", color="C1", label="best so far")
    history.set(xlabel="trial", ylabel="objective", title=f"{title}: optimisation history")
    history.legend(fontsize=8)
    for trial in trials:
        steps = sorted(trial.intermediate_values)
        curves.plot(steps, [trial.intermediate_values[s] for s in steps], marker=".",
                    color="C0" if trial.state == states.COMPLETE else "lightgray")
    curves.set(xlabel="epoch", ylabel="objective", title="intermediate scores (grey: pruned)")
    for axis in (history, curves) if log else ():
        axis.set_yscale("symlog", linthresh=0.01)  # logarithmic above 0.01, linear through the zeros below
    if len(complete) >= 2:
        scores = optuna.importance.get_param_importances(study)
        importance.barh(list(scores)[::-1], list(scores.values())[::-1], color="C2")
        importance.set(xlabel="importance (fANOVA)", title="parameter importances")
    else:
        importance.text(0.5, 0.5, "importances need two complete trials", ha="center", va="center")
        importance.axis("off")
    figure.tight_layout()
    return figure


def plot_confusions(matrices: dict[str, np.ndarray], labels: Sequence[str] = ("real", "VAE", "GAN")) -> plt.Figure:
    """Confusion matrices side by side (rows: true class, columns: predicted), counts written in the cells."""
    figure, axes = plt.subplots(1, len(matrices), squeeze=False, figsize=(4 * len(matrices), 3.5))
    for axis, (title, matrix) in zip(axes[0], matrices.items()):
        axis.imshow(matrix, cmap="Blues")
        for (row, column), count in np.ndenumerate(matrix):
            axis.text(column, row, count, ha="center", va="center",
                      color="white" if count > matrix.max() / 2 else "black")
        axis.set_xticks(range(len(labels)), labels)
        axis.set_yticks(range(len(labels)), labels)
        axis.set(xlabel="predicted", ylabel="true", title=title)
    figure.tight_layout()
    return figure


def plot_curves(rows: Sequence[dict], y: str = "fool_rate", x: str = "train_minutes", by: str = "recipe",
                floor: float | None = None, axis: plt.Axes | None = None, title: str = "") -> plt.Axes:
    """One line per `by` value of result rows: `y` (with its 95% band when the rows carry `{y}_low`/`{y}_high`)
    against `x`; `floor` draws what real hands score."""
    axis = axis or plt.subplots(figsize=(6, 3.5))[1]
    for name in dict.fromkeys(row[by] for row in rows):
        points = sorted((row for row in rows if row[by] == name and y in row), key=lambda row: row[x])
        xs, ys = [row[x] for row in points], [row[y] for row in points]
        line, = axis.plot(xs, ys, marker="o", markersize=3, label=name)
        if points and f"{y}_low" in points[0]:
            axis.fill_between(xs, [row[f"{y}_low"] for row in points], [row[f"{y}_high"] for row in points],
                              color=line.get_color(), alpha=0.15)
    if floor is not None:
        axis.axhline(floor, color="black", linestyle="--", linewidth=1, label="real hands")
    axis.set_xlabel(x.replace("_", " "))
    axis.set_ylabel(y.replace("_", " "))
    axis.set_title(title, fontsize=10)
    axis.legend(fontsize=8)
    return axis
