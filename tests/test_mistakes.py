"""A learner's mistakes in a notebook's cells (a model that forgets to flatten, an optimizer of the model before a
cell was run again, a loss module, a seed as text, a list recorded under a target's metric, the wrong images for a
plot) get an error that names the fix, before an epoch is spent and never as a wrong number."""
import functools
import re

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import models
from mnist_utils import engine
from mnist_utils.batches import Batches
from mnist_utils.data import ImageSet, load_data
from mnist_utils.engine import History, fit, seed_everything
from mnist_utils.evaluation import confusion_matrix, fitting_diagnosis, predict
from mnist_utils.inspection import count_parameters
from mnist_utils.plots import plot_hard_images, plot_history, plot_misclassified, plot_samples
from mnist_utils.report import Report
from mnist_utils.training import run_recipe

CPU = torch.device("cpu")


def digits(count: int = 40) -> ImageSet:
    """`count` random 28×28 pictures with labels 0-9 in turn: enough to run a batch through a model."""
    pixels = torch.randint(0, 256, (count, 28, 28), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    return ImageSet(pixels, torch.arange(count) % 10)


class Unflattened(nn.Module):
    """A network whose last layer is a convolution over the whole picture: (N, 10, 1, 1), not flattened."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 10, 28)

    def forward(self, x):
        return self.conv(x)


def test_a_model_that_gives_other_than_one_row_of_scores_per_image_is_refused_not_scored():
    batches = Batches(digits(), 20)
    flattened = nn.Sequential(Unflattened(), nn.Flatten())
    assert len(predict(flattened, batches, CPU).predicted) == 40, "flattened, it is scored"
    said = r"the model gave \(20, 10, 1, 1\) for 20 images, .*\(20, classes\): flatten its last features"
    with pytest.raises(ValueError, match=said):  # before: an accuracy of 2,115%
        predict(Unflattened(), batches, CPU)
    with pytest.raises(ValueError, match=said):
        engine.test(Unflattened(), batches, CPU)
    model = Unflattened()
    with pytest.raises(ValueError, match=said):
        engine.train(model, batches, torch.optim.SGD(model.parameters(), lr=0.1), CPU)


def test_an_optimizer_made_for_another_model_is_refused_before_it_trains_nothing():
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))  # the model's cell run again, the optimizer's not
    with pytest.raises(ValueError, match="the optimizer holds none of the model's parameters: .*run the cell that "
                                         "makes the optimizer again"):
        fit(model, Batches(digits(), 20), None, optimizer, CPU, epochs=1, progress=None)


def test_a_loss_module_is_refused_before_an_epoch_and_a_function_with_options_is_taken():
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    optimizer, batches = torch.optim.SGD(model.parameters(), lr=0.1), Batches(digits(), 20)
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(TypeError, match=r"loss_fn: give a function that takes reduction=, such as F.cross_entropy, "
                                        r"not CrossEntropyLoss\(\)"):
        fit(model, batches, batches, optimizer, CPU, epochs=1, loss_fn=nn.CrossEntropyLoss(), progress=None)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters())), "refused before training"
    smoothed = functools.partial(F.cross_entropy, label_smoothing=0.1)
    assert len(fit(model, batches, batches, optimizer, CPU, epochs=1, loss_fn=smoothed, progress=None)) == 1
    untested = fit(model, batches, None, optimizer, CPU, epochs=1, loss_fn=nn.CrossEntropyLoss(), progress=None)
    assert len(untested) == 1, "nothing tested: the module is never asked for a sum"


@pytest.mark.parametrize("seed", ["1", 1.5, True, None, -1])
def test_a_seed_that_is_not_a_whole_number_from_0_is_named(seed):
    with pytest.raises((TypeError, ValueError), match=r"a seed is a whole number from 0 to 2\*\*64 - 1, .*"
                                                      f"{re.escape(repr(seed))}"):
        seed_everything(seed)


def test_a_class_outside_the_confusion_matrix_is_refused_not_counted_in_another_cell():
    labels = torch.tensor([3, 3, 4])
    assert confusion_matrix(labels, torch.tensor([3, 9, 4]))[3, 9] == 1
    with pytest.raises(ValueError, match="a predicted class is 10, outside 0 to 9: give num_classes as many as the "
                                         "model has outputs"):
        confusion_matrix(labels, torch.tensor([10, 3, 4]))  # was counted as true 4, predicted 0
    with pytest.raises(ValueError, match="a label is -1, outside 0 to 9"):
        confusion_matrix(torch.tensor([-1]), torch.tensor([0]))


def test_a_fitting_diagnosis_of_a_history_without_test_accuracies_says_what_it_needs():
    tested = {"epoch": 1, "lr": 0.1, "train_loss": 1.0, "train_acc": 90.0, "test_acc": 90.0}
    assert fitting_diagnosis(History([tested]))["verdict"] == "fits well"
    for history, lacking in ((History(), "no epoch"), (History([{**tested, "test_acc": None}]), "epochs without one")):
        with pytest.raises(ValueError, match=f"every epoch's test accuracy, which this history lacks \\({lacking}\\): "
                                             "train with test batches"):
            fitting_diagnosis(history)


def test_a_target_compares_numbers_only_and_a_value_it_cannot_compare_is_refused_and_not_kept(tmp_path):
    report = Report("01_x", "x", output_dir=tmp_path)
    with pytest.raises(ValueError, match="the target on 'params' compares with '8000', not a number"):
        report.target("params", "<", "8000", "Parameters")
    report.target("last3", ">=", 99.4, "Last three epochs", "%")
    report.record(params=7000)
    with pytest.raises(ValueError, match=r"'last3' is recorded as \[99.5, 99.3\], not a number, and a target "
                                         "compares it with 99.4: record one number"):
        report.record(last3=[99.5, 99.3], other=1)
    assert report.metrics == {"params": 7000}, "nothing of the refused call kept: the report still saves"
    report.record(last3=99.3)
    assert [t["met"] for t in report.evaluated_targets()] == [False]


def test_a_target_declared_again_with_another_comparison_replaces_the_one_before(tmp_path):
    report = Report("01_x", "x", output_dir=tmp_path)
    report.target("params", "<", 8000, "Parameters")
    report.target("params", "<=", 6000, "Parameters")  # the cell, edited, run again
    report.record(params=7000)
    assert [(t["op"], t["threshold"], t["met"]) for t in report.evaluated_targets()] == [("<=", 6000, False)]


@pytest.mark.parametrize("seed, shown", [("12", "seed 12"), (12, "seed 12"), ([1, 2], "seeds 1, 2")])
def test_a_report_shows_one_seed_as_one_whatever_its_kind(tmp_path, seed, shown):
    report = Report("01_x", "x", output_dir=tmp_path)
    report.seed = seed
    assert f" profile, {shown}, " in report.result_markdown().splitlines()[0]


def test_plots_of_predictions_refuse_other_images_and_a_grid_of_one_column_draws():
    images = digits().images
    predictions = predict(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), Batches(digits(), 20), CPU)
    plot_misclassified(images, predictions)
    for plot in (lambda shown: plot_misclassified(shown, predictions),
                 lambda shown: plot_hard_images(shown, torch.tensor([0]), {"m": predictions})):
        with pytest.raises(ValueError, match="60 images for 40 predictions: give the images the predictions were "
                                             "made on"):
            plot(torch.cat([images, images[:20]]))  # the training set's, say, under the test set's answers
    assert len(plot_samples(images, digits().labels, per_class=1).axes) == 10


def test_images_where_batches_go_and_a_config_name_where_a_recipe_goes_are_named():
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    with pytest.raises(TypeError, match=r"predictions read Batches, not ImageSet: give the recipe's, e.g. "
                                        r"recipe.eval_batches\(data.test, device\)"):
        predict(model, digits(), CPU)
    with pytest.raises(TypeError, match=r"run_recipe trains a Recipe, not 'step2': give load_config\('step2'\)"):
        run_recipe("step2", None, CPU)


def test_a_profiles_name_a_class_and_a_run_recipe_pair_are_named_where_they_go():
    with pytest.raises(TypeError, match=r"load_data takes a Profile, not its name: give get_profile\('smoke'\)"):
        load_data("smoke")
    with pytest.raises(TypeError, match=r"not a class's: give Model_3\(\)"):
        count_parameters(models.Model_3)
    assert count_parameters(models.Model_3()) == 5_458
    history = History([{"epoch": 1, "lr": 0.1, "train_loss": 1.0, "train_acc": 90.0, "test_acc": 90.0}])
    with pytest.raises(TypeError, match=r"run_recipe gives \(model, history\), so take its second"):
        plot_history((nn.Linear(1, 1), history))
    plot_history(history)
