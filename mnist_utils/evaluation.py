"""What a trained model gets right and wrong: predictions on a fixed set of images (averaged over views or models:
`ensemble`), the confusion matrix, per-class precision / recall / F1, paired tests between two models, and summaries
of a history (over- or under-fitting, the last epochs against a target, a table over seeds). Several models
together, and how to choose an ensemble's members: mnist_utils/ensembles.py."""
from __future__ import annotations

import math
from copy import deepcopy
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .batches import Batches
from .config import generators_kept
from .engine import PROBED, History, class_scores, progress_bar
from .inspection import count_parameters
from .lanes import lanes_to_evaluate, run_in_lanes


@dataclass
class Predictions:
    """A model's verdict on every image of an (unshuffled) set, in order."""

    labels: torch.Tensor  # (N,) true class
    predicted: torch.Tensor  # (N,) arg-max class
    probabilities: torch.Tensor  # (N, 10) softmax

    @property
    def correct(self) -> torch.Tensor:
        return self.predicted == self.labels

    @property
    def accuracy(self) -> float:
        """Percent right, from the exact count (a float32 mean wrote 99.49 as 99.48999881744385); NaN for no images."""
        return 100.0 * int(self.correct.sum()) / len(self.labels) if len(self.labels) else float("nan")

    @property
    def confidence(self) -> torch.Tensor:
        return self.probabilities.max(dim=1).values

    @property
    def wrong(self) -> torch.Tensor:
        """Indices of the misclassified images, most confident mistakes first."""
        wrong = torch.nonzero(~self.correct).flatten()
        return wrong[self.confidence[wrong].argsort(descending=True)]


NO_SHIFT = ((0, 0),)
ONE_PIXEL_SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))  # the image, then one pixel down, up, right, left


def predict_views(model: nn.Module, batches: Batches, device: torch.device,
                  shifts: Sequence[tuple[int, int]] = NO_SHIFT, desc: str | None = None) -> list[Predictions]:
    """One Predictions per shift ((down, right) in pixels): the model's verdict on every image of `batches`
    (which must not shuffle) rolled by that shift. A roll moves mostly background across the edges: MNIST
    centres each digit in a 28×28 frame with a margin (the few digits that touch the frame see a pixel of their
    ink wrap to the other side). The views are computed in one pass over the batches, side by side in lanes where
    the caller computes on one CPU thread (`lanes_to_evaluate`; same numbers; a hook on `model` sees batches in any
    order). `desc`: a progress bar with that label (a long evaluation outside a notebook's training loop)."""
    if not isinstance(batches, Batches):  # data.test, say: an ImageSet has no batches
        raise TypeError(f"predictions read Batches, not {type(batches).__name__}: give the recipe's, e.g. "
                        "recipe.eval_batches(data.test, device), prepared as the model was trained")
    if batches.shuffle:
        raise ValueError("predictions need batches in a fixed order: make them with shuffle=False")
    if not shifts:
        raise ValueError("shifts must hold at least one (down, right) pair; (0, 0) is the image as it is")
    model.eval()

    @torch.inference_mode()  # in the thread that computes the batch: a lane's own
    def views_of(images: torch.Tensor, labels: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        images, views = images.to(device), []
        for shift in shifts:
            shown = torch.roll(images, shift, dims=(2, 3)) if any(shift) else images
            views.append(F.softmax(class_scores(model(shown), labels).float(), dim=1).cpu())
        return views, labels.cpu()

    listed = progress_bar(batches, desc=desc, unit="batch", leave=False) if desc else batches
    views, labels = zip(*run_in_lanes((lambda batch=batch: views_of(*batch) for batch in listed),
                                      lanes_to_evaluate(device, len(batches))))  # each batch's
    labels = torch.cat(labels)
    return [Predictions(labels, probabilities.argmax(dim=1), probabilities)  # zip(*views): a shift's, batch by batch
            for probabilities in (torch.cat(per_shift) for per_shift in zip(*views))]


def predict(model: nn.Module, batches: Batches, device: torch.device,
            shifts: Sequence[tuple[int, int]] = NO_SHIFT, desc: str | None = None) -> Predictions:
    """Predictions and probabilities for every image of `batches` (which must not shuffle). With several
    `shifts`, test-time augmentation: each image is seen once per shift (`predict_views`) and the softmax
    outputs are averaged."""
    return ensemble(predict_views(model, batches, device, shifts, desc))


def with_tta(model: nn.Module, batches: Batches, device: torch.device, *,
             plain: Predictions | None = None) -> tuple[Predictions, Predictions]:
    """`model`'s predictions on `batches` for each image as it is, and with test-time augmentation: the softmax
    averaged over the image and its four one-pixel shifts (`ONE_PIXEL_SHIFTS`), in one pass. Given `plain`, the
    predictions for the images as they are, already made, only the shifts are computed."""
    views = predict_views(model, batches, device, ONE_PIXEL_SHIFTS if plain is None else ONE_PIXEL_SHIFTS[1:])
    views = views if plain is None else [plain, *views]
    return views[0], ensemble(views)


def accuracy_with_dropout(model: nn.Module, batches: Batches, device: torch.device) -> float:
    """Accuracy (%) on `batches` with dropout on, as in training, and BatchNorm on its running statistics, as at
    test: set beside the accuracy with dropout off (`predict`), what dropout alone costs on the same images and
    weights. A copy of `model` draws the masks, from its dropout layers' generators as they stand (torch's own
    generator forked and seeded, for layers that use it): the model is left as it was, and a rerun gives the same
    number."""
    copy = deepcopy(model).train()  # its generators are copies: the model's own draw nothing
    for module in copy.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):  # the same normalisation as `predict`'s
            module.eval()
    correct = total = 0
    device = torch.device(device)
    with torch.no_grad(), generators_kept(device):
        torch.manual_seed(0)
        for images, targets in batches:
            correct += int((copy(images.to(device)).argmax(dim=1).cpu() == targets.cpu()).sum())
            total += len(targets)
    return 100 * correct / max(1, total)


def confusion_matrix(labels: torch.Tensor, predicted: torch.Tensor, num_classes: int = 10) -> torch.Tensor:
    """counts[true, predicted]; a ValueError for a class outside 0 to `num_classes` - 1, which would be counted in
    another cell without a word (a model with more outputs than the digits' 10 can predict one)."""
    for what, classes in (("label", labels), ("predicted class", predicted)):
        low, high = (int(classes.min()), int(classes.max())) if len(classes) else (0, 0)
        if low < 0 or high >= num_classes:
            outside = high if high >= num_classes else low
            raise ValueError(f"a {what} is {outside}, outside 0 to {num_classes - 1}: give num_classes as many as the "
                             "model has outputs, or a model with one output per class")
    index = labels.long() * num_classes + predicted.long()
    return torch.bincount(index, minlength=num_classes**2).view(num_classes, num_classes)


def per_class_metrics(confusion: torch.Tensor) -> list[dict[str, float]]:
    """Precision, recall, F1 (%) and support per class, then a 'macro' row averaging the classes."""
    confusion = confusion.double()
    true_positive = confusion.diag()
    precision = true_positive / confusion.sum(dim=0).clamp(min=1)
    recall = true_positive / confusion.sum(dim=1).clamp(min=1)
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
    rows = [{"class": c, "precision": 100 * precision[c].item(), "recall": 100 * recall[c].item(),
             "f1": 100 * f1[c].item(), "support": int(confusion[c].sum())} for c in range(len(confusion))]
    rows.append({"class": "macro", "precision": 100 * precision.mean().item(), "recall": 100 * recall.mean().item(),
                 "f1": 100 * f1.mean().item(), "support": int(confusion.sum())})
    return rows


def top_confusions(confusion: torch.Tensor, k: int = 5) -> list[tuple[int, int, int]]:
    """The `k` most frequent mistakes as (true, predicted, count), most frequent first."""
    errors = confusion.clone()
    errors.fill_diagonal_(0)
    counts, flat = errors.flatten().sort(descending=True)
    n = len(confusion)
    return [(int(i) // n, int(i) % n, int(c)) for c, i in zip(counts[:k], flat[:k]) if c > 0]


def confused_pairs(confusion: torch.Tensor, k: int = 5) -> list[tuple[int, int, int]]:
    """The `k` pairs of digits most often mistaken for each other, either way round: (a, b, count), a < b."""
    return top_confusions((confusion + confusion.T).triu(diagonal=1), k)


def check_same_images(predictions: Sequence[Predictions]) -> None:
    """Refuse (ValueError) predictions that are not all on the same images in the same order."""
    if not predictions:
        raise ValueError("need at least one model's predictions")
    if any(not torch.equal(p.labels, predictions[0].labels) for p in predictions[1:]):
        raise ValueError("predictions must be on the same images in the same order: predict every model "
                         "with the same unshuffled batches")


def ensemble(predictions: Sequence[Predictions]) -> Predictions:
    """Several models' predictions combined by averaging their softmax outputs (a model given twice counts twice)."""
    check_same_images(predictions)
    probabilities = torch.stack([p.probabilities for p in predictions]).mean(dim=0)
    return Predictions(predictions[0].labels, probabilities.argmax(dim=1), probabilities)


def log_loss(predictions: Predictions) -> float:
    """Mean negative log-probability of the true class (the cross-entropy of the softmax outputs)."""
    picked = predictions.probabilities.gather(1, predictions.labels[:, None]).clamp_min(1e-12)
    return -picked.log().mean().item()


def mcnemar(a: Predictions, b: Predictions) -> dict[str, float]:
    """Paired comparison of two models on the same images: how many images only `a` gets right, how many
    only `b`, and the exact two-sided McNemar p-value, the chance of a split at least this lopsided if
    both were equally good (a binomial test on the images where they disagree)."""
    check_same_images([a, b])
    only_a, only_b = int((a.correct & ~b.correct).sum()), int((~a.correct & b.correct).sum())
    n = only_a + only_b
    tail = sum(math.comb(n, i) for i in range(min(only_a, only_b) + 1))
    return {"only_a": only_a, "only_b": only_b, "p_value": min(1.0, 2 * tail / 2**n)}


LAST_EPOCHS = 3  # the goal holds in each of a run's last 3 epochs, and its train − test gap is their mean
GAP_TOLERANCE = 0.1  # points: a gap within ±this "fits well"; 10 of 10,000 images, about one standard error
LEAN_SE = 2  # standard errors: a verdict on a gap nearer zero than this many of them is a lean


def accuracy_se(accuracy: float, count: int) -> float:
    """Standard error (points) of an accuracy (%) measured on `count` images: how far it moves by the luck of
    which images were drawn."""
    return 100 * math.sqrt(accuracy / 100 * (1 - accuracy / 100) / count)


def accuracy_difference_se(a: float, count_a: int, b: float, count_b: int) -> float:
    """Standard error (points) of the difference of two accuracies (%) measured on `count_a` and `count_b`
    independent images: how far apart two such figures lie by the luck of the images alone."""
    return math.hypot(accuracy_se(a, count_a), accuracy_se(b, count_b))


def fitting_diagnosis(history: History, last: int = LAST_EPOCHS, tolerance: float = GAP_TOLERANCE,
                      images: tuple[int, int] | None = None) -> dict[str, Any]:
    """Over- or under-fitting, from the train/test accuracy gap (points) averaged over the `last` epochs. The
    training accuracy is `history.train_accuracy_column`'s: training images scored as the test set is, where the run
    probed them, so that the two sides are measured alike; else the accuracy during each epoch. Above
    +`tolerance` the model does better on what it has seen than on new digits (it overfits); below −`tolerance`
    it does better on test digits than on its own (it underfits: during an epoch, augmentation or dropout can
    make the training batches the harder ones); in between it fits well. `gaps_during`, `mean_gap_during` and
    `verdict_during` are the same from the accuracy during each epoch, whichever column the verdict reads.
    Given `images`, how many training images the probe scores and how many test images, `gap_se` is one standard
    error of the last epoch's gap, and a verdict other than "fits well" on a mean gap within `LEAN_SE` of them is a
    `lean`, not a finding (the luck of which images fall in the two sets could make it); `verdict_text` says so."""
    if not history.rows or any(row.get("test_acc") is None for row in history.rows):
        raise ValueError("a fitting diagnosis reads every epoch's test accuracy, which this history lacks ("
                         f"{'no epoch' if not history.rows else 'epochs without one'}): train with test batches")
    def gaps_of(column: str) -> tuple[list[float], float, str]:
        gaps = [train - test for train, test in zip(history[column], history["test_acc"])]
        mean_gap = sum(gaps[-last:]) / len(gaps[-last:])
        verdict = "overfits" if mean_gap > tolerance else "underfits" if mean_gap < -tolerance else "fits well"
        return gaps, mean_gap, verdict

    gaps, mean_gap, verdict = gaps_of(history.train_accuracy_column)
    gaps_during, mean_gap_during, verdict_during = gaps_of("train_acc")
    gap_se = None
    if images is not None and history.train_accuracy_column == PROBED:
        (train_images, test_images), row = images, history.rows[-1]
        gap_se = accuracy_difference_se(row[PROBED], train_images, row["test_acc"], test_images)
    lean = gap_se is not None and verdict != "fits well" and abs(mean_gap) < LEAN_SE * gap_se
    return {"gaps": gaps, "mean_gap": mean_gap, "verdict": verdict, "last": min(last, len(gaps)),
            "tolerance": tolerance, "measured": history.train_accuracy_column, "gap_se": gap_se, "lean": lean,
            "verdict_text": verdict + (f" (a lean: within {LEAN_SE} SE)" if lean else ""), "gaps_during": gaps_during,
            "mean_gap_during": mean_gap_during, "verdict_during": verdict_during}


def last_epochs_summary(history: History, threshold: float, last: int = LAST_EPOCHS) -> dict[str, Any]:
    """Test accuracy over the `last` epochs against `threshold` (%): the values, their minimum, whether
    each meets it, how far apart they lie (`spread`, points), and the best epoch of the whole run."""
    values = history.last("test_acc", last)
    best_epoch, best = history.best("test_acc")
    return {"last": values, "min_last": min(values), "met": len(history) >= last and min(values) >= threshold,
            "spread": test_acc_spread(history, last), "best": best, "best_epoch": best_epoch, "final": values[-1]}


def test_acc_spread(history: History, last: int) -> float:
    """How far apart the test accuracies of the `last` epochs lie: highest minus lowest, in points: how much
    the score still moves from epoch to epoch, the weights' steps and the luck of the last batches together."""
    values = history.last("test_acc", last)
    return max(values) - min(values)


def seed_table(histories: dict[int, History], threshold: float, last: int = LAST_EPOCHS) -> tuple[list[dict], dict]:
    """Per seed: the last `last` test accuracies, their minimum, the best and whether the target holds;
    and over all seeds: final accuracy mean ± std, lowest last-`last` accuracy, seeds meeting the target."""
    rows, summaries = [], {}
    for seed, history in histories.items():
        summary_ = summaries[seed] = last_epochs_summary(history, threshold, last)
        epochs = history.last("epoch", last)
        rows.append({"seed": seed, **{f"epoch {epoch}": v for epoch, v in zip(epochs, summary_["last"])},
                     f"min of last {last}": summary_["min_last"], "best": summary_["best"],
                     "best epoch": summary_["best_epoch"], f"≥ {threshold}% in each": "met" if summary_["met"] else "NOT met"})
    finals = torch.tensor([s["final"] for s in summaries.values()], dtype=torch.float64)
    overall = {"seeds": len(histories), "seeds_met": sum(s["met"] for s in summaries.values()),
               "final_mean": finals.mean().item(), "final_std": finals.std().item() if len(finals) > 1 else 0.0,
               "min_last": min(s["min_last"] for s in summaries.values()),
               "best": max(s["best"] for s in summaries.values())}
    return rows, overall


# The series' goal, as Report targets on the metrics `run_summary` records: notebooks 01 and 02 state it so; 03
# states its own, stricter ones (fewer parameters, a lowest accuracy over seeds).
GOAL_ACC = 99.4  # %: the series' goal, reached in each of the last 3 epochs
STEP_GOAL = (("params", "<", 8000, "Parameters"), ("epochs", "<=", 15, "Epochs"),
             ("min_last3_test_acc", ">=", GOAL_ACC, "Lowest test accuracy of the last 3 epochs (the final goal: each of "
              "them)", "%"))

RUN_SUMMARY_LABELS = {"final_test_acc": "Final test accuracy (%)", "best_epoch": "Best epoch",
                      "final_train_acc": "Final train accuracy, during the epoch (%)",
                      "final_train_eval_acc": "Final train accuracy, scored as the test set is (%)",
                      "mean_gap_last3": ("Train − test gap, mean of the last 3 epochs (points; training digits "
                                         "scored as the test set is)", "+.2f"),
                      "mean_gap_during_last3": ("The same gap from the accuracy during each epoch (points)", "+.2f"),
                      "training_seconds": ("Training time (s)", ".1f"),
                      "images_per_s": ("Training images per second", ",.0f")}


def probed_gap(metrics: dict[str, Any], notebook: str) -> float:
    """The last-3-epoch train − test gap that `notebook`'s results file records, provided it was measured on
    training images scored as the test set is, as this series measures it; a file from a run that measured it
    during the epoch would compare unlike with like, and is an error that names the notebook to rerun."""
    if metrics.get("gap_measured") != PROBED:
        raise ValueError(f"{notebook}'s results measure the train − test gap during the epoch, not as the test set "
                         f"is scored: rerun notebook {notebook} first (its config's train_probe scores training "
                         "images)")
    return metrics["mean_gap_last3"]


def run_summary(model: nn.Module, history: History, threshold: float = GOAL_ACC,
                images: tuple[int, int] | None = None) -> dict[str, Any]:
    """What a results file records about one model's run tested after every epoch: its size, best and
    final test accuracy, the last 3 epochs against `threshold` and how far apart they (and the last 5) lie, the
    train − test gap (with its standard error, given `images` as `fitting_diagnosis` takes them) and the time.
    `RUN_SUMMARY_LABELS` names the ones a Result block shows."""
    final = last_epochs_summary(history, threshold)
    diagnosis = fitting_diagnosis(history, images=images)
    return {"params": count_parameters(model), "epochs": len(history),
            "best_test_acc": final["best"], "best_epoch": final["best_epoch"], "final_test_acc": final["final"],
            "min_last3_test_acc": final["min_last"], "last3_test_acc": final["last"],
            "last3_met": final["met"], "last3_spread": final["spread"], "last5_spread": test_acc_spread(history, 5),
            "final_train_acc": history["train_acc"][-1],
            **({"final_train_eval_acc": history["train_eval_acc"][-1]} if diagnosis["measured"] == PROBED else {}),
            "mean_gap_last3": diagnosis["mean_gap"], "gaps": diagnosis["gaps"], "verdict": diagnosis["verdict"],
            "gap_se": diagnosis["gap_se"], "verdict_text": diagnosis["verdict_text"],
            "gap_measured": diagnosis["measured"], "mean_gap_during_last3": diagnosis["mean_gap_during"],
            "gaps_during": diagnosis["gaps_during"], "verdict_during": diagnosis["verdict_during"],
            "training_seconds": history.seconds, "images_per_s": history.images_per_second}


def head_to_head(predictions: dict[str, Predictions], a: str, b: str,
                 seconds: dict[str, float] | None = None) -> dict[str, Any]:
    """Model `b` against model `a` (names in `predictions`, on the same images): both accuracies (%), b's
    lead in points, how many images only a and only b get right and the McNemar p-value (`mcnemar`), and,
    given training `seconds` per model, b's training time as a multiple of a's. `text` says it in one line:
    'b 99.41% vs a 99.30% (+0.11 points, McNemar p = 0.21) for 2.3× the training time'."""
    test = mcnemar(predictions[a], predictions[b])
    result = {"a": a, "b": b, "accuracy_a": predictions[a].accuracy, "accuracy_b": predictions[b].accuracy,
              "only_a": test["only_a"], "only_b": test["only_b"], "p_value": test["p_value"],
              "time_ratio": None if seconds is None else seconds[b] / seconds[a]}
    result["points"] = result["accuracy_b"] - result["accuracy_a"]
    result["text"] = (f"{b} {result['accuracy_b']:.2f}% vs {a} {result['accuracy_a']:.2f}% ({result['points']:+.2f} "
                      f"points, McNemar p = {result['p_value']:.2g})")
    if seconds is not None:
        result["text"] += f" for {result['time_ratio']:.1f}× the training time"
    return result


def clean_epochs_effect(history: History, clean_epochs: int) -> dict[str, float]:
    """For a run whose last `clean_epochs` epochs trained on unaugmented digits: the change in test
    accuracy from the last augmented epoch to the first clean one; `augmented_gap`, that last augmented
    epoch's accuracy on its augmented batches, during the epoch, minus its test accuracy (points): how much
    harder the augmented digits are than the test set's; and `gap_alike`, that epoch's train − test gap as
    `fitting_diagnosis` measures it (the training probe's, where the run has one). NaN for all three when no epoch
    was clean."""
    last_augmented = len(history) - clean_epochs
    if not clean_epochs or last_augmented < 1:
        return {"gain": math.nan, "augmented_gap": math.nan, "gap_alike": math.nan}
    test_acc, train_acc = history["test_acc"], history["train_acc"]
    return {"gain": test_acc[last_augmented] - test_acc[last_augmented - 1],
            "augmented_gap": train_acc[last_augmented - 1] - test_acc[last_augmented - 1],
            "gap_alike": fitting_diagnosis(history)["gaps"][last_augmented - 1]}
