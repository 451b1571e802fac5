"""Every figure of the series. Each function returns its figure, closed: Jupyter shows it once as the
cell's value, scripts can save it."""
from __future__ import annotations

import io
import math
from typing import Sequence

import matplotlib.pyplot as plt
from matplotlib.axis import Axis
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from matplotlib.transforms import blended_transform_factory
import numpy as np
import seaborn as sns
import torch
import torch.nn as nn

from .augment import Augment
from .config import counted
from .data import CLASSES
from .engine import PROBED, History
from .evaluation import LAST_EPOCHS, Predictions, fitting_diagnosis
from .exploration import class_counts
from .recipes import Recipe

def png_bytes(figure: plt.Figure, dpi: int = 110) -> bytes:
    """`figure` as a PNG file's bytes, for a caller that writes it atomically or serves it."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _finish(fig: plt.Figure) -> plt.Figure:
    fig.tight_layout()
    plt.close(fig)
    return fig


def decimal_log_ticks(axis: Axis, subs: Sequence[float] = (1, 2, 5)) -> None:
    """Label a log-scaled `axis` at `subs` × the powers of ten, written as plain decimals (0.05, not 5×10⁻²), and
    leave its minor ticks unlabelled: the default labels of a short log axis are few, or crowded, and hard to read."""
    axis.set_major_locator(LogLocator(subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def zoom_past_first_epochs(ax: plt.Axes, curves: Sequence[tuple[Sequence[float], Sequence[float], object]], *,
                           skip: int = 2, top: float | None = None) -> Line2D | None:
    """Set `ax`'s y-limits to the values of `curves` ((epochs, values, colour) each) past the first `skip` epochs
    (one per four epochs of the longest curve: a 5-epoch run loses only its first; a run cut short beside longer
    ones loses its first epochs as they do), and up to `top` if given: the first epochs of a run sit far below
    the rest and would squash the region where runs differ. Each value left
    below the axis is marked by a triangle of its curve's colour on the bottom edge; returns a legend handle that
    says how many, and below what (None when none is). Zooms only where that leaves at least two thirds of the
    points on the axis: a short run is mostly first epochs."""
    curves = [([e for e, v in zip(epochs, ys) if v is not None], [v for v in ys if v is not None], colour)
              for epochs, ys, colour in curves]  # an epoch that did not measure a column has None in it
    curves = [curve for curve in curves if curve[1]]
    if not curves:
        return None
    values = [v for _, ys, _ in curves for v in ys]
    first = min(skip, max(max(epochs) for epochs, _, _ in curves) // 4)  # epochs count from 1
    later = [v for epochs, ys, _ in curves for epoch, v in zip(epochs, ys) if epoch > first]
    high = max(values + ([top] if top is not None else []))
    low = min(later)
    if sum(v < low for v in values) > len(values) / 3:
        low = min(values)
    margin = max(0.1, 0.05 * (high - low))  # room around the lines, in proportion to what is shown
    bottom = math.floor(round((low - margin) * 10, 6)) / 10  # on a tenth: the note below names the edge itself
    ax.set_ylim(bottom, high + margin)
    edge = blended_transform_factory(ax.transData, ax.transAxes)  # x: the epoch; y: the axis' bottom edge
    hidden = 0
    for epochs, ys, colour in curves:
        below = [epoch for epoch, v in zip(epochs, ys) if v < bottom]
        if below:  # an empty line of markers would still stretch the figure's layout to the page's corner
            ax.plot(below, [0] * len(below), ls="", marker="v", ms=5, color=colour, transform=edge, clip_on=False)
        hidden += len(below)
    if not hidden:
        return None
    return Line2D([], [], ls="", marker="v", ms=5, color="grey",
                  label=f"{counted(hidden, 'value')} below {bottom:.1f}%, off the axis")  # values: 'points' are percentage points here


def plot_class_counts(train_labels: torch.Tensor, test_labels: torch.Tensor) -> plt.Figure:
    """Bars of images per class for train and test, with the mean count marked."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
    for ax, labels, name in zip(axes, (train_labels, test_labels), ("train", "test")):
        counts = np.array(class_counts(labels))
        sns.barplot(x=list(CLASSES), y=counts, ax=ax, color="#4c72b0")
        ax.axhline(counts.mean(), color="0.3", ls="--", lw=1, label=f"mean {counts.mean():,.0f}")
        ax.set(title=f"{name}: {counts.sum():,} images", xlabel="digit", ylabel="images")
        ax.legend(loc="lower right")
    return _finish(fig)


def plot_samples(images: torch.Tensor, labels: torch.Tensor, per_class: int = 8, seed: int = 0) -> plt.Figure:
    """A grid: one row per digit, `per_class` random examples each."""
    generator = torch.Generator().manual_seed(seed)
    fig, axes = plt.subplots(10, per_class, figsize=(per_class * 0.9, 10 * 0.9), squeeze=False)  # per_class 1 too
    for digit in CLASSES:
        pool = torch.nonzero(labels == digit).flatten()
        chosen = pool[torch.randperm(len(pool), generator=generator)[:per_class]]
        for column, ax in enumerate(axes[digit]):
            ax.axis("off")
            if column < len(chosen):
                ax.imshow(images[chosen[column]].cpu().numpy(), cmap="gray_r")
        axes[digit][0].set_title(str(digit), loc="left", fontsize=9)
    return _finish(fig)


def plot_mean_images(images: torch.Tensor, labels: torch.Tensor) -> plt.Figure:
    """The average image of each digit."""
    fig, axes = plt.subplots(1, 10, figsize=(12, 1.6))
    for digit, ax in zip(CLASSES, axes):
        ax.imshow(images[labels == digit].float().mean(dim=0).cpu().numpy(), cmap="magma")
        ax.set_title(str(digit))
        ax.axis("off")
    return _finish(fig)


def plot_pixel_histogram(images: torch.Tensor) -> plt.Figure:
    """How often each of the 256 pixel values occurs (log scale: most pixels are background)."""
    counts = torch.bincount(images.flatten(), minlength=256).numpy()
    fig, ax = plt.subplots(figsize=(9, 3))
    ax.bar(np.arange(256), counts, width=1.0, color="#4c72b0")
    ax.set(yscale="log", xlabel="pixel value (0 = background, 255 = ink)", ylabel="pixels",
           title=f"{counts[0] / counts.sum():.1%} of pixels are 0, {counts[255] / counts.sum():.1%} are 255")
    return _finish(fig)


def plot_augmentation(images: torch.Tensor, augment: Augment, n: int = 8, copies: int = 4, seed: int = 0) -> plt.Figure:
    """`n` training images (columns): the original on top, then `copies` random augmentations of it."""
    generator = torch.Generator().manual_seed(seed)
    originals = images[:n].unsqueeze(1).float().div(255)
    rows = [originals] + [augment(originals, generator) for _ in range(copies)]
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 1.0, len(rows) * 1.05), squeeze=False)
    for r, batch in enumerate(rows):
        for c in range(n):
            axes[r][c].imshow(batch[c, 0].cpu().numpy(), cmap="gray_r", vmin=0, vmax=1)
            axes[r][c].set_xticks([])
            axes[r][c].set_yticks([])
        axes[r][0].set_ylabel("original" if r == 0 else f"random {r}", fontsize=8)
    fig.suptitle(f"augmentation: {augment.describe()}", fontsize=10)
    return _finish(fig)


def plot_history(histories: History | dict[str, History], title: str = "", loss_floor: float = 0.0) -> plt.Figure:
    """Loss and accuracy per epoch, train (dashed: during each epoch; dotted: training images scored as the test
    set is, where the run probed them) and test or validation (solid), for one run or several. With several, the
    colour names the run and the line style the measurement, each in a legend of its own (one legend entry per
    line would hide the curves). Loss on a log scale where it falls over a decade or more, above `loss_floor` (the
    lowest it can be, `Recipe.loss_floor`: drawn where above 0); accuracy zoomed past the first epochs
    (`zoom_past_first_epochs`)."""
    if isinstance(histories, History):
        histories = {"": histories}
    if not isinstance(histories, dict) or not all(isinstance(h, History) for h in histories.values()):
        raise TypeError("plot_history draws a History, or several by name ({name: history}): run_recipe gives "
                        "(model, history), so take its second")
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(12, 3.8))
    palette = sns.color_palette("tab10", len(histories))
    several, styles = len(histories) > 1, {}  # styles: each measurement drawn, by its line style
    accuracies, losses = [], []  # (epochs, values, colour) of each accuracy curve; every loss drawn
    for colour, (name, history) in zip(palette, histories.items()):
        held_out = "test" if history.rows and "test_acc" in history.rows[0] else "val"
        measured = [("train", "train, during each epoch", "--")]  # (column, what it is, line style)
        if history.train_accuracy_column == PROBED:
            measured.append(("train_eval", "train, scored as test", ":"))  # eval mode, no augmentation
        measured.append((held_out, held_out, "-"))
        for column, what, style in measured:
            label = None if several else f"{name} {what}".strip()
            loss_ax.plot(history["epoch"], history[f"{column}_loss"], ls=style, color=colour, label=label)
            acc_ax.plot(history["epoch"], history[f"{column}_acc"], ls=style, color=colour, label=label,
                        **(dict(marker="o", ms=3) if style == "-" else {}))
            styles[what] = style
            accuracies.append((history["epoch"], history[f"{column}_acc"], colour))
            losses += [v for v in history[f"{column}_loss"] if v is not None]
    if loss_floor > 0:  # label smoothing's: the curves flatten towards it, not towards 0
        floor = f"lowest possible, {loss_floor:.3f}"
        loss_ax.axhline(loss_floor, color="grey", lw=1, ls="-.", label=None if several else floor)
        styles[floor] = "-."
    if losses and max(losses) > 10 * min(losses):  # a log scale only where the loss falls over a decade or more
        loss_ax.set_yscale("log")
        decimal_log_ticks(loss_ax.yaxis)
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss")
    acc_ax.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    off_axis = zoom_past_first_epochs(acc_ax, accuracies) if accuracies else None
    for ax in (loss_ax, acc_ax):
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    if several:
        loss_ax.legend([Line2D([], [], ls=style, color="grey") for style in styles.values()], list(styles), fontsize=8)
        handles = [Line2D([], [], color=colour, label=name) for colour, name in zip(palette, histories)]
    else:
        loss_ax.legend(fontsize=8)
        handles = acc_ax.get_legend_handles_labels()[0]
    acc_ax.legend(handles=handles + ([off_axis] if off_axis else []), fontsize=8)
    if title:
        fig.suptitle(title)
    return _finish(fig)


def plot_test_accuracy(histories: History | dict[str, History], target: float | None = None, last: int = LAST_EPOCHS,
                       title: str = "") -> plt.Figure:
    """Test accuracy per epoch, zoomed past the first epochs (`zoom_past_first_epochs`), with the target line and
    the last `last` epochs shaded (where a target "in each of the last epochs" is judged); and the train − test
    gap per epoch, from `fitting_diagnosis` (training images scored as the test set is, where the run probed them)."""
    if isinstance(histories, History):
        histories = {"": histories}
    fig, (acc_ax, gap_ax) = plt.subplots(1, 2, figsize=(12, 4.2))  # taller: the legend goes under the axes
    palette = sns.color_palette("tab10", len(histories))
    for colour, (name, history) in zip(palette, histories.items()):
        acc_ax.plot(history["epoch"], history["test_acc"], marker="o", ms=3, color=colour, label=name or "test")
        gaps = fitting_diagnosis(history)["gaps"]
        gap_ax.plot(history["epoch"], gaps, marker="o", ms=3, color=colour, label=name or "train − test")
    epochs = max(len(h) for h in histories.values())
    if target is not None:
        acc_ax.axhline(target, color="crimson", ls="--", lw=1, label=f"target {target}%")
    acc_ax.axvspan(epochs - last + 0.5, epochs + 0.5, color="0.9", zorder=0, label=f"last {last} epochs")
    off_axis = zoom_past_first_epochs(acc_ax, [(h["epoch"], h["test_acc"], colour)
                                               for colour, h in zip(palette, histories.values())], top=target)
    acc_ax.set(xlabel="epoch", ylabel="test accuracy (%)", title="test accuracy")
    gap_ax.axhline(0, color="0.3", lw=1)
    gap_ax.set(xlabel="epoch", ylabel="points", title="train − test accuracy (> 0: better on seen data)")
    for ax in (acc_ax, gap_ax):
        ax.set_xlim(0.5, epochs + 0.5)  # from epoch 1, as the shaded last epochs end at the last
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    # under the axes: inside, a legend covers the target line (runs end near it) or the lowest epochs (the zoom)
    handles = acc_ax.get_legend_handles_labels()[0] + ([off_axis] if off_axis else [])
    acc_ax.legend(handles=handles, fontsize=8, ncol=min(3, len(handles)), loc="upper center",
                  bbox_to_anchor=(0.5, -0.2), frameon=False)
    gap_ax.legend(fontsize=8, ncol=2)
    if title:
        fig.suptitle(title)
    return _finish(fig)


def plot_schedule(recipe: Recipe, steps_per_epoch: int) -> plt.Figure:
    """The learning rate and momentum `recipe` uses at every training step, worked out by running its own
    optimizer and scheduler on a dummy parameter."""
    dummy = nn.Parameter(torch.zeros(1))
    optimizer = recipe.make_optimizer([dummy])
    scheduler = recipe.make_scheduler(optimizer, steps_per_epoch)
    rates, momenta = [], []
    for _ in range(recipe.epochs * steps_per_epoch):
        group = optimizer.param_groups[0]
        rates.append(group["lr"])
        momenta.append(group.get("momentum", group.get("betas", (0.0,))[0]))
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    epochs = [step / steps_per_epoch for step in range(len(rates))]
    fig, (lr_ax, momentum_ax) = plt.subplots(1, 2, figsize=(12, 3.2))
    lr_ax.plot(epochs, rates)
    momentum_ax.plot(epochs, momenta, color="tab:orange")
    lr_ax.set(xlabel="epoch", ylabel="learning rate", title="learning rate per step", yscale="log")
    momentum_ax.set(xlabel="epoch", ylabel="momentum", title="momentum per step")
    for ax in (lr_ax, momentum_ax):
        ax.grid(alpha=0.3)
    return _finish(fig)


def plot_confusion(confusion: torch.Tensor, title: str = "") -> plt.Figure:
    """Heatmap of mistakes only (the diagonal is left blank so errors stand out), with counts."""
    errors = confusion.clone().numpy().astype(float)
    np.fill_diagonal(errors, np.nan)
    labels = np.where(errors > 0, np.nan_to_num(errors).astype(int).astype(str), "")
    fig, ax = plt.subplots(figsize=(6, 5))
    sns.heatmap(errors, annot=labels, fmt="", cmap="Reds", cbar=False, ax=ax, linewidths=0.5, linecolor="0.9")
    ax.set(xlabel="predicted (mistakes only: the diagonal, the right answers, is left blank)", ylabel="true",
           title=title or f"{int(confusion.sum() - confusion.trace())} errors of {int(confusion.sum()):,}")
    return _finish(fig)


def _check_images_predicted(images: torch.Tensor, predicted: int) -> None:
    """Refuse (ValueError) `images` that are not the `predicted` ones, image for image: the training set's under the
    test set's answers would draw the wrong digits without a word."""
    if len(images) != predicted:
        raise ValueError(f"{len(images):,} images for {predicted:,} predictions: give the images the predictions were "
                         "made on (e.g. data.test.images for a model's test predictions)")


def plot_misclassified(images: torch.Tensor, predictions: Predictions, n: int = 24, columns: int = 8) -> plt.Figure:
    """The most confident mistakes: image, true → predicted, confidence."""
    _check_images_predicted(images, len(predictions.labels))
    wrong = predictions.wrong[:n]
    rows = max(1, -(-len(wrong) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.3, rows * 1.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, index in zip(axes.flat, wrong.tolist()):
        ax.imshow(images[index].cpu().numpy(), cmap="gray_r")
        ax.set_title(f"{predictions.labels[index]}→{predictions.predicted[index]} "
                     f"{predictions.confidence[index]:.0%}", fontsize=10, color="#b00")  # legible in a page
    fig.suptitle(f"{len(predictions.wrong)} misclassified; the {len(wrong)} most confident (true→predicted)")
    return _finish(fig)


PER_CLASS_FLOORS = (98, 97, 95, 90, 80, 50, 0)  # %, where a per-class bar chart's axis may start


def plot_per_class(metrics: Sequence[dict[str, float]], title: str = "") -> plt.Figure:
    """Precision, recall and F1 per digit, on an axis from the highest of PER_CLASS_FLOORS half a point under
    every bar: the charts of models of similar accuracy, each drawn on its own, share one scale."""
    rows = [r for r in metrics if r["class"] != "macro"]
    fig, ax = plt.subplots(figsize=(10, 3.2))
    width = 0.27
    x = np.arange(len(rows))
    measures = {"precision": "precision", "recall": "recall", "f1": "F1"}  # key: legend label
    for offset, (key, label) in zip((-width, 0, width), measures.items()):
        ax.bar(x + offset, [r[key] for r in rows], width, label=label)
    low = min(min(r[k] for r in rows) for k in measures)
    floor = next(f for f in PER_CLASS_FLOORS if f <= max(0.0, low - 0.5))  # round: the same for similar models
    ax.set(xticks=x, xticklabels=[str(r["class"]) for r in rows], ylim=(floor, 100.2),
           xlabel="digit", ylabel="%", title=title or "per-class precision, recall and F1")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.005, 1))  # beside the axes: bars reach the top
    ax.grid(axis="y", alpha=0.3)
    return _finish(fig)


def plot_shared_errors(counts: torch.Tensor, names: Sequence[str], images: str = "test") -> plt.Figure:
    """Heatmap of `shared_errors`: images each pair of models both get wrong, each model's errors on the diagonal.
    `images` names the set they were counted on, for the title."""
    size = 1.2 * len(names) + 2
    fig, ax = plt.subplots(figsize=(size + 0.5, size - 0.5))
    sns.heatmap(counts.numpy(), annot=True, fmt="d", cmap="Purples", cbar=False, xticklabels=names,
                yticklabels=names, ax=ax, linewidths=0.5, linecolor="0.9")
    ax.set_title(f"{images} images both models get wrong\n(diagonal: each model's own errors)")
    ax.tick_params(axis="x", rotation=30)
    ax.tick_params(axis="y", rotation=0)
    return _finish(fig)


def plot_hard_images(images: torch.Tensor, indices: torch.Tensor, predictions: dict[str, Predictions],
                     n: int = 32, columns: int = 8) -> plt.Figure:
    """The first `n` images at `indices`, each titled with its true label and every model's answer, in model order."""
    labels = next(iter(predictions.values())).labels
    _check_images_predicted(images, len(labels))
    total, indices = len(indices), indices[:n].tolist()
    if not indices:
        fig, ax = plt.subplots(figsize=(6, 0.8))
        ax.axis("off")
        ax.text(0.5, 0.5, "no image is misclassified by every model", ha="center", va="center")
        return _finish(fig)
    rows = -(-len(indices) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.3, rows * 1.55 + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, index in zip(axes.flat, indices):
        ax.imshow(images[index].cpu().numpy(), cmap="gray_r")
        answers = " ".join(str(int(p.predicted[index])) for p in predictions.values())  # apart: not one number
        ax.set_title(f"{int(labels[index])} → {answers}", fontsize=10, color="#b00")
    shown = f"{total} images" if total == len(indices) else f"{len(indices)} of {total} images"
    fig.suptitle(f"{shown}; title: true → answers of {', '.join(predictions)}", fontsize=10)
    return _finish(fig)
