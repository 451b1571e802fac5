"""Several models together (notebook 06): each one's calibration (a temperature), an ensemble's members chosen on
held-out predictions only, the choice's own noise (the same choice made again on halves of them), and where the
models' errors overlap. Every function takes `Predictions` (mnist_utils/evaluation.py) of the same images."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from .evaluation import Predictions, check_same_images, ensemble, log_loss


def with_temperature(predictions: Predictions, temperature: float) -> Predictions:
    """`predictions` with each softmax rescaled to softmax(log p / T): sharper for T < 1, flatter for T > 1, the
    answers unchanged. On one model's own outputs that is softmax(logits / T), temperature scaling."""
    probabilities = torch.softmax(predictions.probabilities.clamp_min(1e-12).log() / temperature, dim=1)
    return Predictions(predictions.labels, predictions.predicted, probabilities)


def fit_temperature(predictions: Predictions, lowest: float = 0.1, highest: float = 10.0, steps: int = 461) -> float:
    """The temperature, of `steps` spaced evenly in log between `lowest` and `highest` (1% apart by default),
    that gives `predictions` the lowest log-loss: temperature scaling (Guo et al., 2017), fitted on held-out
    images. A model trained on smoothed labels aims at 1 − ε + ε/10 for its answer, never 1, so its raw log-loss
    measures that aim more than its mistakes; once each model is calibrated, log-loss ranks them by how right
    and how sure they are again. A grid, not an optimiser: the same predictions always give the same choice.
    The log-loss is convex in 1/T, so along the grid it falls, then rises: a binary search for the first point
    whose next one is no lower finds the grid's minimum from about 18 of its losses instead of all of them."""
    temperatures = torch.logspace(math.log10(lowest), math.log10(highest), steps, dtype=torch.float64)
    log_p = predictions.probabilities.double().clamp_min(1e-12).log()
    true = predictions.labels[:, None]

    def loss(i: int) -> torch.Tensor:
        return -torch.log_softmax(log_p / temperatures[i], dim=1).gather(1, true).mean()

    low, high = 0, steps - 1
    while low < high:
        middle = (low + high) // 2
        if loss(middle + 1) < loss(middle):
            low = middle + 1
        else:
            high = middle
    return temperatures[low].item()


def choose_members(predictions: dict[str, Predictions], rounds: int | None = None) -> list[dict[str, Any]]:
    """Greedy ensemble selection (Caruana et al., 2004) on held-out predictions: start from the model with the
    lowest log-loss, then each round add the model (again, if it helps most: a repeat is a larger weight)
    whose softmax, averaged in, lowers the ensemble's log-loss most; stop when no addition lowers it, or after
    `rounds` (default: twice the number of models). Log-loss rather than accuracy, because on a few thousand
    images many additions tie on accuracy. Returns one row per round: the member added, the ensemble after it
    (its members, a repeat listed again) with its accuracy and log-loss. Feed it validation predictions only:
    the test set must not choose."""
    check_same_images(list(predictions.values()))
    rounds = rounds or 2 * len(predictions)
    members: list[str] = []
    rows: list[dict[str, Any]] = []
    total = None
    for _ in range(rounds):
        scored = []
        for name, p in predictions.items():
            mixed = p.probabilities if total is None else (total + p.probabilities) / (len(members) + 1)
            candidate = Predictions(p.labels, mixed.argmax(dim=1), mixed)
            scored.append((log_loss(candidate), -candidate.accuracy, name, candidate))
        loss, _, name, candidate = min(scored, key=lambda row: row[:3])
        if rows and loss >= rows[-1]["log-loss"]:
            break
        members.append(name)
        total = predictions[name].probabilities.clone() if total is None else total + predictions[name].probabilities
        rows.append({"round": len(rows) + 1, "added": name, "ensemble": " + ".join(members),
                     "accuracy": candidate.accuracy, "log-loss": loss})
    return rows


@dataclass
class Choice:
    """What held-out predictions choose (`choose_on`): each candidate's temperature, the rounds of the greedy
    ensemble selection over the calibrated candidates, and the best single candidate by accuracy."""

    temperature: dict[str, float]
    selection: list[dict[str, Any]]
    best: str

    @property
    def members(self) -> list[str]:
        """The ensemble's members in the order chosen; a repeat is a larger weight."""
        return [row["added"] for row in self.selection]

    def combine(self, predictions: dict[str, Predictions], members: Sequence[str] | None = None) -> Predictions:
        """The average of `members` (default: the chosen ensemble's), each calibrated by the temperature this choice
        fitted it, over `predictions`: each candidate's predictions on any one set of images (validation, test)."""
        return ensemble([with_temperature(predictions[name], self.temperature[name])
                         for name in (self.members if members is None else members)])


def choose_on(predictions: dict[str, Predictions]) -> Choice:
    """The whole choice notebook 06 makes from held-out predictions: a temperature per candidate
    (`fit_temperature`), the ensemble by greedy selection on the calibrated candidates (`choose_members`), the
    best single candidate by accuracy (ties: the first given). Feed it validation predictions only."""
    temperature = {name: fit_temperature(p) for name, p in predictions.items()}
    selection = choose_members({name: with_temperature(p, temperature[name]) for name, p in predictions.items()})
    return Choice(temperature, selection, max(predictions, key=lambda name: predictions[name].accuracy))


def _subset(predictions: Predictions, index: torch.Tensor) -> Predictions:
    return Predictions(predictions.labels[index], predictions.predicted[index], predictions.probabilities[index])


def random_halves(count: int, halvings: int, seed: int) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
    """`halvings` seeded random halvings of `count` images, each both ways round: (halving, choosing half, scoring
    half), two disjoint index sets that together hold every image (of an odd count, the second half of each halving
    holds the one more: the scoring half in one fold, the choosing half in the other)."""
    if count < 2 or halvings < 1:
        raise ValueError(f"need at least 2 images and 1 halving, got {count} images and {halvings} halvings")
    generator = torch.Generator().manual_seed(seed)
    folds = []
    for halving in range(1, halvings + 1):
        order = torch.randperm(count, generator=generator)
        first, second = order[:count // 2], order[count // 2:]
        folds += [(halving, first, second), (halving, second, first)]
    return folds


def choice_on_halves(predictions: dict[str, Predictions], halvings: int, seed: int) -> list[dict[str, Any]]:
    """`choose_on` made on half of the held-out images and scored on the other half, for each fold of
    `random_halves`. One row per fold: the best single candidate and the ensemble's members chosen on the choosing
    half, the images of the scoring half each gets right, and `gain`, the ensemble's minus that single candidate's
    (positive: the ensemble is ahead). Both choices see half the images the whole split gives them,
    so they are noisier than the whole split's; the folds of one halving are complements, so not independent."""
    check_same_images(list(predictions.values()))
    rows = []
    for halving, choose, score in random_halves(len(next(iter(predictions.values())).labels), halvings, seed):
        choice = choose_on({name: _subset(p, choose) for name, p in predictions.items()})
        scored = {name: _subset(predictions[name], score) for name in {choice.best, *choice.members}}
        ensemble_right = int(choice.combine(scored).correct.sum())
        single_right = int(scored[choice.best].correct.sum())
        rows.append({"halving": halving, "images": len(score), "best single": choice.best,
                     "ensemble": " + ".join(choice.members), "ensemble right": ensemble_right,
                     "single right": single_right, "gain": ensemble_right - single_right})
    return rows


def halves_summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """`choice_on_halves` rows in one table row: the folds, the images each scores (a halving's two folds differ by
    one when the split's count is odd: then their mean, rounded down), the images the ensemble and the single
    candidate chosen beside it get right (means over the folds), in how many folds the ensemble was ahead, tied and
    behind, and its gain: the mean (in images, and in points of the images scored), the lowest and the highest."""
    gains, images = [row["gain"] for row in rows], [row["images"] for row in rows]
    ahead, behind = sum(g > 0 for g in gains), sum(g < 0 for g in gains)
    return {"folds": len(gains), "images scored per fold": sum(images) // len(images),
            "ensemble right": sum(row["ensemble right"] for row in rows) / len(rows),
            "single right": sum(row["single right"] for row in rows) / len(rows), "ensemble ahead": ahead,
            "tied": len(gains) - ahead - behind, "ensemble behind": behind,
            "mean gain (images)": sum(gains) / len(gains), "lowest": min(gains), "highest": max(gains),
            "mean gain (points)": 100 * sum(gains) / sum(images)}


def shared_errors(predictions: Sequence[Predictions]) -> torch.Tensor:
    """counts[i, j]: images that models i and j both get wrong; the diagonal holds each model's errors."""
    check_same_images(predictions)
    wrong = torch.stack([~p.correct for p in predictions]).double()
    return (wrong @ wrong.T).long()


def most_shared(overlap: torch.Tensor) -> list[float]:
    """For each model (a row of `shared_errors`' counts), the largest share of its errors that one other model also
    makes: 1.0 when another model makes every one of them (0 for a model without errors)."""
    if len(overlap) < 2:
        raise ValueError(f"most_shared compares each model with the others: give at least 2, got {len(overlap)}")
    others = overlap.to(torch.float64, copy=True).fill_diagonal_(-1)  # a model's own errors are not another's
    return (others.max(dim=1).values / overlap.diagonal().clamp(min=1)).tolist()


def wrong_by_all(predictions: Sequence[Predictions]) -> torch.Tensor:
    """Indices of the images that every one of the models gets wrong: no choice among them gets these right."""
    check_same_images(predictions)
    return torch.nonzero(torch.stack([~p.correct for p in predictions]).all(dim=0)).flatten()


def wrong_by_any(predictions: Sequence[Predictions]) -> torch.Tensor:
    """Indices of the images that at least one of the models gets wrong."""
    check_same_images(predictions)
    return torch.nonzero(torch.stack([~p.correct for p in predictions]).any(dim=0)).flatten()
