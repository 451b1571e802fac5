"""The training engine (train, test, fit and its early stopping), the optimizer, schedule and loss factories
(optim.py), evaluation, inspection and plots."""
import copy

import pytest
import torch
import torch.nn as nn

import models
from mnist_utils import engine
from mnist_utils.augment import Augment
from mnist_utils.averaging import WeightAverage
from mnist_utils.batches import Batches
from mnist_utils.data import ImageSet, train_val_split
from mnist_utils.engine import EarlyStopping, EpochStats, History, fit, monitor_mode, seed_everything
from mnist_utils.evaluation import (ONE_PIXEL_SHIFTS, confusion_matrix, per_class_metrics, predict, predict_views,
                                    top_confusions, with_tta)
from mnist_utils.exploration import count_repeats, exact_duplicates, split_facts
from mnist_utils.inspection import count_parameters, last_convolution_field, last_layer, receptive_field, summary
from mnist_utils.optim import make_loss, make_optimizer, make_scheduler, one_cycle
from mnist_utils.plots import (plot_class_counts, plot_confusion, plot_history, plot_per_class,
                               plot_samples)
from mnist_utils.recipes import Recipe


def tiny_cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(16 * 5 * 5, 10))


def run(mnist, seed, epochs=2, **fit_kwargs):
    """A small seeded training run: 512 training images with augmentation, 256 test images."""
    device = torch.device("cpu")
    seed_everything(seed)
    model = tiny_cnn()
    train_batches = Batches(mnist.train.head(512), 64, shuffle=True, seed=seed, augment=Augment(rotation=10, erase_p=0.2))
    test_batches = Batches(mnist.test.head(256), 128)
    optimizer = make_optimizer("sgd", model.parameters(), lr=0.1)
    scheduler = make_scheduler("onecycle", optimizer, epochs=epochs, steps_per_epoch=len(train_batches))
    history = fit(model, train_batches, test_batches, optimizer, device, epochs=epochs,
                        scheduler=scheduler, progress=None, **fit_kwargs)
    return model, history


def metrics(history: History):
    return [{k: v for k, v in row.items() if k not in ("seconds", "images_per_s")} for row in history.rows]


def test_same_seed_twice_gives_identical_epoch_metrics(mnist):
    _, first = run(mnist, seed=11)
    _, second = run(mnist, seed=11)
    _, other = run(mnist, seed=12)
    assert metrics(first) == metrics(second)
    assert metrics(first) != metrics(other)


def test_training_learns(mnist):
    _, history = run(mnist, seed=0, epochs=3)
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["test_acc"][-1] > 60, "three epochs on 512 images should beat chance (10%) by far"


def test_onecycle_is_stepped_per_batch_and_step_lr_per_epoch(mnist):
    model = tiny_cnn()
    batches = Batches(mnist.train.head(256), 64, shuffle=True)
    optimizer = make_optimizer("sgd", model.parameters(), lr=0.1)
    onecycle = make_scheduler("onecycle", optimizer, epochs=2, steps_per_epoch=len(batches))
    fit(model, batches, None, optimizer, torch.device("cpu"), epochs=2, scheduler=onecycle, progress=None)
    assert onecycle.last_epoch == 2 * len(batches)
    optimizer = make_optimizer("adam", model.parameters(), lr=0.01)
    step = make_scheduler("step", optimizer, step_size=1, gamma=0.5)
    history = fit(model, batches, None, optimizer, torch.device("cpu"), epochs=3, scheduler=step, progress=None)
    assert history["lr"] == pytest.approx([0.01, 0.005, 0.0025])


def test_a_weight_average_starts_from_the_first_step_then_weighs_each_step_decay_times_the_next():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    averaged = WeightAverage(model, decay=0.75)
    steps = []  # the trained weights after each step

    def step():
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(torch.randn_like(parameter))
        model.train()(torch.randn(8, 3))  # moves BatchNorm's statistics and counts the batch
        averaged.update()
        steps.append(copy.deepcopy(model.state_dict()))

    for _ in range(3):
        step()
    assert list(averaged.model.state_dict()) == list(model.state_dict()), "the model's own keys"
    weights = torch.tensor([0.75 ** 2, 0.75, 1.0])  # the last step weighs most
    for key, value in averaged.model.state_dict().items():
        if value.is_floating_point():
            expected = sum(w * s[key] for w, s in zip(weights, steps)) / weights.sum()
            assert torch.allclose(value, expected, atol=1e-6), key
        else:
            assert value == steps[-1][key] == 3, key  # BatchNorm's batch count: copied, not averaged
    with pytest.raises(ValueError, match=r"decay must be in \(0, 1\), got 1"):
        WeightAverage(model, decay=1)


def test_fit_with_ema_tests_keeps_and_shows_the_average_while_training_goes_on_from_its_own_weights(mnist):
    device = torch.device("cpu")
    seed_everything(5)
    model = tiny_cnn()
    train_batches = Batches(mnist.train.head(512), 64, shuffle=True, seed=5)
    test_batches = Batches(mnist.test.head(256), 128)
    optimizer = make_optimizer("sgd", model.parameters(), lr=0.1)
    shown = []  # the weights each on_epoch saw in `model`
    history = fit(model, train_batches, test_batches, optimizer, device, epochs=3, progress=None, ema=0.8,
                  on_epoch=lambda row, improved: shown.append(copy.deepcopy(model.state_dict())))
    seed_everything(5)  # the same run without the average
    model_again, batches_again = tiny_cnn(), Batches(mnist.train.head(512), 64, shuffle=True, seed=5)
    plain = fit(model_again, batches_again, test_batches, make_optimizer("sgd", model_again.parameters(), lr=0.1),
                device, epochs=3, progress=None)
    assert history["train_loss"] == plain["train_loss"], "the average and on_epoch's view leave training as it is"
    assert history["test_loss"] != plain["test_loss"], "the average is what is tested"
    assert engine.test(model, test_batches, device).loss == pytest.approx(history["test_loss"][-1], rel=1e-6)
    for key, value in model.state_dict().items():
        assert torch.equal(value, shown[-1][key]), f"{key}: on_epoch saw the weights given back"
    assert not model.training, "given back in eval mode, as a model tested itself is"


def test_fit_with_ema_and_keep_best_gives_back_the_best_epochs_average(mnist):
    train_part, val_part = train_val_split(mnist.train.head(512), 128, seed=0)
    model = tiny_cnn()
    history = fit(model, Batches(train_part, 64, shuffle=True), None, make_optimizer("sgd", model.parameters(), lr=0.2),
                  torch.device("cpu"), epochs=4, val_batches=Batches(val_part, 128), keep_best=True, progress=None,
                  ema=0.9)
    _, best_loss = history.best("val_loss", mode="min")
    assert engine.test(model, Batches(val_part, 128), torch.device("cpu")).loss == pytest.approx(best_loss, rel=1e-6)


def test_holding_puts_the_models_own_weights_back_even_when_its_block_fails():
    from mnist_utils.averaging import holding

    model, other = nn.Linear(2, 2), nn.Linear(2, 2)
    own = copy.deepcopy(model.state_dict())
    with pytest.raises(KeyboardInterrupt), holding(model, other):
        assert torch.equal(model.weight, other.weight)
        raise KeyboardInterrupt
    assert all(torch.equal(value, own[key]) for key, value in model.state_dict().items())


def test_early_stopping_keeps_the_best_weights(mnist):
    data = mnist.train.head(512)
    train_part, val_part = train_val_split(data, 128, seed=0)
    model = tiny_cnn()
    optimizer = make_optimizer("sgd", model.parameters(), lr=5.0, momentum=0.0)  # diverges: val loss rises
    history = fit(model, Batches(train_part, 64, shuffle=True), None, optimizer, torch.device("cpu"),
                        epochs=20, val_batches=Batches(val_part, 128), patience=2, keep_best=True, progress=None)
    best_epoch, best_loss = history.best("val_loss", mode="min")
    assert len(history) == best_epoch + 2, "stops after `patience` epochs without improvement"
    restored = engine.test(model, Batches(val_part, 128), torch.device("cpu"))
    assert restored.loss == pytest.approx(best_loss, rel=1e-5)


@pytest.mark.parametrize("monitor_from, stops_after, restored_epoch", [(1, 3, 1), (3, 6, 4)])
def test_early_stopping_watches_from_monitor_from_only(mnist, monkeypatch, monitor_from, stops_after, restored_epoch):
    # Scripted validation losses, as under a warm-up: lowest at epoch 1, up while the rate climbs, then down.
    losses, states = iter([1.0, 2.0, 3.0, 2.5, 2.6, 2.7, 2.8, 2.9]), []

    def scripted_test(model, batches, device, **_):
        states.append(copy.deepcopy(model.state_dict()))
        return EpochStats(next(losses), 50.0, 1, 1.0)

    monkeypatch.setattr(engine, "test", scripted_test)
    model = tiny_cnn()
    history = fit(model, Batches(mnist.train.head(128), 64, shuffle=True), None,
                        make_optimizer("sgd", model.parameters(), lr=0.1), torch.device("cpu"), epochs=8,
                        val_batches=Batches(mnist.train.head(64), 64), patience=2, keep_best=True,
                        monitor_from=monitor_from, progress=None)
    assert len(history) == stops_after
    for trained, kept in zip(model.state_dict().values(), states[restored_epoch - 1].values()):
        assert torch.equal(trained, kept)


def test_early_stopping_on_val_acc_keeps_the_highest_epoch_and_stops_once_it_falls(mnist, monkeypatch):
    # Scripted validation: accuracy up to epoch 3, then down; the loss rises throughout, so watching it (or
    # watching the accuracy downwards) would stop at epoch 3 and keep epoch 1.
    scores, states = iter([(1.0, 90.0), (1.1, 92.0), (1.2, 95.0), (1.3, 94.0), (1.4, 93.0), (1.5, 96.0)]), []

    def scripted_test(model, batches, device, **_):
        states.append(copy.deepcopy(model.state_dict()))
        loss, accuracy = next(scores)
        return EpochStats(loss, accuracy, 1, 1.0)

    monkeypatch.setattr(engine, "test", scripted_test)
    model = tiny_cnn()
    improved = []
    history = fit(model, Batches(mnist.train.head(128), 64, shuffle=True), None,
                  make_optimizer("sgd", model.parameters(), lr=0.1), torch.device("cpu"), epochs=6,
                  val_batches=Batches(mnist.train.head(64), 64), patience=2, monitor="val_acc", keep_best=True,
                  progress=None, on_epoch=lambda row, better: improved.append(better))
    assert improved == [True, True, True, False, False], "best while it rises; 2 epochs lower: patience spent"
    assert len(history) == 5 and history.best("val_acc") == (3, 95.0)
    for trained, kept in zip(model.state_dict().values(), states[2].values()):
        assert torch.equal(trained, kept), "the weights of epoch 3, the highest accuracy"


def test_a_plateau_schedule_under_fit_waits_for_val_acc_to_stop_rising(mnist, monkeypatch):
    # Scripted epochs: the training loss falls throughout while the validation accuracy rises to epoch 5, then
    # holds. The rate must hold while the accuracy rises and halve after 3 epochs without a rise (patience 2).
    train_losses = iter([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    accuracies = iter([90.0, 91.0, 92.0, 93.0, 94.0, 94.0, 94.0, 94.0, 94.0])
    monkeypatch.setattr(engine, "train", lambda *args, **kwargs: EpochStats(next(train_losses), 50.0, 1, 1.0))
    monkeypatch.setattr(engine, "test", lambda *args, **kwargs: EpochStats(1.0, next(accuracies), 1, 1.0))
    recipe = Recipe(scheduler="plateau", monitor="val_acc", val_fraction=0.1, lr=1.0)
    model = tiny_cnn()
    optimizer = recipe.make_optimizer(model.parameters())
    history = fit(model, Batches(mnist.train.head(64), 64), None, optimizer, torch.device("cpu"), epochs=9,
                  scheduler=recipe.make_scheduler(optimizer, steps_per_epoch=1),
                  val_batches=Batches(mnist.train.head(64), 64), monitor=recipe.monitor, progress=None)
    assert history["lr"] == [1.0] * 8 + [0.5], "epochs 6-8 hold at 94%: epoch 9 trains at half the rate"


def test_monitoring_validation_needs_validation_batches(mnist):
    with pytest.raises(ValueError, match="val_batches"):
        fit(tiny_cnn(), Batches(mnist.train.head(64), 32), None, make_optimizer("adam", tiny_cnn().parameters(), 1e-3),
                  torch.device("cpu"), epochs=1, patience=1)


def test_a_step_or_plateau_schedule_is_described_as_its_scheduler_runs():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    step = Recipe(scheduler="step")
    runs = step.make_scheduler(optimizer, steps_per_epoch=10)
    assert f"learning rate ×{runs.gamma:g} every {runs.step_size} epochs" in step.describe()
    plateau = Recipe(scheduler="plateau", monitor="val_acc", val_fraction=0.1)
    runs = plateau.make_scheduler(optimizer, steps_per_epoch=10)
    described = f"×{runs.factor:g} once more than {runs.patience} epochs pass without a better val_acc"
    assert described in plateau.describe()


def test_a_plateau_schedule_without_the_validation_it_watches_is_refused(mnist):
    # It once fell back to the training loss, stepped in val_acc's direction ('max'): falling losses read as
    # no progress and halved the rate. Now the recipe and fit both refuse it.
    with pytest.raises(ValueError, match="plateau schedule watch the validation split: set val_fraction"):
        Recipe(scheduler="plateau", monitor="val_acc")
    model = tiny_cnn()
    optimizer = make_optimizer("sgd", model.parameters(), 0.1)
    plateau = make_scheduler("plateau", optimizer, mode="max")
    with pytest.raises(ValueError, match="plateau schedule.*needs val_batches"):
        fit(model, Batches(mnist.train.head(64), 32), None, optimizer, torch.device("cpu"), epochs=1,
            scheduler=plateau, monitor="val_acc", progress=None)
    # and one made to wait for a fall, watching an accuracy: it would cut the rate as the accuracy rises
    with pytest.raises(ValueError, match="watches 'val_acc' in mode 'min'.*mode='max'"):
        fit(model, Batches(mnist.train.head(64), 32), None, optimizer, torch.device("cpu"), epochs=1,
            scheduler=make_scheduler("plateau", optimizer, mode="min"), monitor="val_acc",
            val_batches=Batches(mnist.train.head(64), 32), progress=None)


def test_fit_refuses_a_monitor_it_cannot_read_and_a_plateau_schedule_read_the_wrong_way():
    from types import SimpleNamespace
    check = engine._check_monitor
    with pytest.raises(ValueError, match="monitoring 'test_acc' needs test_batches"):
        check("test_acc", None, True, has_val=True, has_test=False)
    check("val_loss", None, False, has_val=False, has_test=True)  # nothing watches it: a column left out, no error
    # the message says which way the column gets better, and the mode that matches it
    with pytest.raises(ValueError, match=r"'val_acc' is better higher: make it with mode='max'"):
        check("val_acc", SimpleNamespace(mode="min"), True, has_val=True, has_test=True)
    with pytest.raises(ValueError, match=r"'val_loss' is better lower: make it with mode='min'"):
        check("val_loss", SimpleNamespace(mode="max"), True, has_val=True, has_test=True)


def test_history_speed_is_all_images_over_all_seconds():
    history = History()
    history.record(1, 0.1, EpochStats(loss=1.0, accuracy=90.0, images=1000, seconds=1.0))
    history.record(2, 0.1, EpochStats(loss=0.5, accuracy=95.0, images=3000, seconds=3.0 / 5))
    assert history.seconds == pytest.approx(1.6)
    # 4,000 images in 1.6 s; the mean of the two epochs' rates (1,000 and 5,000 images/s) would say 3,000
    assert history.images_per_second == pytest.approx(2500.0)


def test_history_best_reads_the_epochs_that_measured_its_column():
    history = History()
    history.rows = [{"epoch": 1, "val_acc": 98.0}, {"epoch": 2, "val_acc": 99.0, "test_acc": 99.1},
                    {"epoch": 3, "val_acc": 99.0, "test_acc": 98.9}]
    assert history.best("test_acc") == (2, 99.1) and history.best("test_acc", "min") == (3, 98.9)
    assert history.best("val_acc") == (2, 99.0), "a tie goes to the earlier epoch"
    with pytest.raises(ValueError, match="no epoch of this history measured 'val_loss'"):
        history.best("val_loss")
    with pytest.raises(ValueError, match="no epoch trained yet"):
        History().images_per_second


def test_fit_refuses_a_progress_it_does_not_draw(mnist):
    model = models.Model_3()
    with pytest.raises(ValueError, match="progress: 'batches', 'epochs' or None, got 'epoch'"):
        fit(model, [], None, make_optimizer("sgd", model.parameters(), lr=0.1), torch.device("cpu"), epochs=1,
            progress="epoch")


def test_one_cycle_needs_3_steps_and_warms_up_over_at_least_2():
    parameter = nn.Parameter(torch.zeros(1))
    assert one_cycle(torch.optim.SGD([parameter], lr=0.1), epochs=1, steps_per_epoch=2) is None, "no step down"
    optimizer = torch.optim.SGD([parameter], lr=0.1)
    scheduler = one_cycle(optimizer, epochs=1, steps_per_epoch=4, max_lr=1.0, pct_start=0.1)
    rates = []
    for _ in range(4):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates.index(max(rates)) == 1 and max(rates) == pytest.approx(1.0), "a tenth of 4 steps still peaks 2nd"
    # the steps counted are the cycle's (anneal_epochs), not the run's: a 1-step cycle in a 10-step run is none
    # (a 2-step one divided by zero), and a 4-step one still peaks at its second step
    assert one_cycle(torch.optim.SGD([parameter], lr=0.1), epochs=10, steps_per_epoch=1, anneal_epochs=1) is None
    assert one_cycle(torch.optim.SGD([parameter], lr=0.1), epochs=3, steps_per_epoch=2, anneal_epochs=1) is not None
    assert one_cycle(torch.optim.SGD([parameter], lr=0.1), epochs=1, steps_per_epoch=2, anneal_epochs=1) is None, \
        "a 2-step run has no schedule, with anneal_epochs or without"
    optimizer = torch.optim.SGD([parameter], lr=0.1)
    scheduler = one_cycle(optimizer, epochs=10, steps_per_epoch=4, max_lr=1.0, pct_start=0.1, anneal_epochs=1)
    rates = []
    for _ in range(6):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates.index(max(rates)) == 1 and max(rates) == pytest.approx(1.0) and rates[4] == rates[5] < 1e-3


def test_accuracies_are_watched_upwards_and_losses_downwards():
    watched = ("val_acc", "train_eval_acc", "val_loss", "train_loss")
    assert [monitor_mode(column) for column in watched] == ["max", "max", "min", "min"]
    assert EarlyStopping("val_acc").maximise and not EarlyStopping("val_loss").maximise


def test_factories_refuse_unknown_names():
    params = tiny_cnn().parameters()
    with pytest.raises(ValueError, match="sgd, adam, adamw"):
        make_optimizer("rmsprop", params, 0.1)
    with pytest.raises(ValueError, match="onecycle"):
        make_scheduler("cosine", torch.optim.SGD(tiny_cnn().parameters(), lr=0.1))


def test_the_loss_smooths_labels_and_sums_as_test_asks():
    logits, labels = torch.randn(6, 10, generator=torch.Generator().manual_seed(0)), torch.arange(6)
    assert make_loss(0.0) is torch.nn.functional.cross_entropy  # no smoothing: the plain loss, unchanged
    smoothed = make_loss(0.1)
    target = torch.full((6, 10), 0.01).scatter(1, labels[:, None], 0.91)  # 1 - ε + ε/10 on the true digit
    by_hand = -(target * logits.log_softmax(dim=1)).sum(dim=1)
    assert torch.allclose(smoothed(logits, labels), by_hand.mean())
    assert torch.allclose(smoothed(logits, labels, reduction="sum"), by_hand.sum())


def test_a_test_pass_sums_its_batches_losses_as_python_would_to_the_last_digit(mnist):
    # test() adds on the device, in float64, to wait for no batch: the figures of Python's own sum of each batch's
    model, _ = run(mnist, seed=0, epochs=1)
    batches, loss_fn = Batches(mnist.test.head(250), 100), make_loss(0.1)
    with torch.no_grad():
        parts = [(loss_fn(model(x), y, reduction="sum").item(), int((model(x).argmax(1) == y).sum())) for x, y in batches]
    stats = engine.test(model, batches, torch.device("cpu"), loss_fn=loss_fn)
    assert (stats.loss, stats.accuracy) == (sum(loss for loss, _ in parts) / 250, 100 * sum(n for _, n in parts) / 250)


def test_confusion_matrix_and_per_class_metrics():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    predicted = torch.tensor([0, 1, 1, 1, 2, 0])
    confusion = confusion_matrix(labels, predicted, num_classes=3)
    assert confusion.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    rows = per_class_metrics(confusion)
    assert rows[1]["precision"] == pytest.approx(200 / 3) and rows[1]["recall"] == pytest.approx(100)
    assert rows[1]["f1"] == pytest.approx(80)
    assert rows[-1]["class"] == "macro" and rows[-1]["recall"] == pytest.approx(100 * (0.5 + 1 + 0.5) / 3)
    assert top_confusions(confusion, k=5) == [(0, 1, 1), (2, 0, 1)]


def test_support_counts_each_classs_true_images_and_macro_f1_averages_the_classes_f1():
    # Rows (true class) and columns (predicted) add up differently: 4, 4, 2 images of each class, 5, 2, 3 answers.
    confusion = torch.tensor([[3, 1, 0], [2, 1, 1], [0, 0, 2]])
    rows = per_class_metrics(confusion)
    assert [row["support"] for row in rows] == [4, 4, 2, 10]
    precision, recall = [3 / 5, 1 / 2, 2 / 3], [3 / 4, 1 / 4, 2 / 2]
    f1 = [2 * p * r / (p + r) for p, r in zip(precision, recall)]
    assert [row["f1"] for row in rows[:3]] == pytest.approx([100 * v for v in f1])
    # the mean of the classes' F1 (60%), not the F1 of the mean precision and mean recall (62.5%)
    assert rows[-1]["f1"] == pytest.approx(100 * sum(f1) / 3) == 60.0


def test_predict_orders_mistakes_by_confidence(mnist):
    model, _ = run(mnist, seed=0, epochs=1)
    batches = Batches(mnist.test.head(250), 100)  # 250: a share float32 cannot hold exactly
    predictions = predict(model, batches, torch.device("cpu"))
    assert predictions.probabilities.shape == (250, 10)
    assert torch.allclose(predictions.probabilities.sum(1), torch.ones(250))
    # the same figure as a test pass gives, to the last digit: from the count, not a float32 mean
    assert predictions.accuracy == engine.test(model, batches, torch.device("cpu")).accuracy
    mistakes = torch.nonzero(predictions.predicted != predictions.labels).flatten()
    assert len(mistakes) > 0 and sorted(predictions.wrong.tolist()) == sorted(mistakes.tolist())
    confidence = predictions.confidence[predictions.wrong]
    assert (confidence[:-1] >= confidence[1:]).all()
    with pytest.raises(ValueError, match="shuffle=False"):
        predict(model, Batches(mnist.test.head(64), 32, shuffle=True), torch.device("cpu"))


def test_predict_with_shifts_averages_the_softmax_of_each_rolled_view(mnist):
    model, _ = run(mnist, seed=0, epochs=1)
    images, cpu = mnist.test.head(200), torch.device("cpu")
    shifts = ((0, 0), (1, 0), (0, -2))
    tta = predict(model, Batches(images, 64), cpu, shifts=shifts)

    class Rolled(nn.Module):  # the model seeing each image rolled by `shift`
        def __init__(self, shift):
            super().__init__()
            self.shift = shift

        def forward(self, x):
            return model(torch.roll(x, self.shift, dims=(2, 3)))

    views = [predict(Rolled(shift), Batches(images, 64), cpu) for shift in shifts]
    assert torch.allclose(tta.probabilities, torch.stack([v.probabilities for v in views]).mean(0), atol=1e-6)
    assert torch.equal(tta.predicted, tta.probabilities.argmax(1)) and torch.equal(tta.labels, views[0].labels)
    assert not torch.allclose(views[0].probabilities, views[2].probabilities), "a shift changes what the model sees"
    plain = predict(model, Batches(images, 64), cpu)
    assert torch.equal(plain.probabilities, views[0].probabilities), "no shift: the images as they are"
    with pytest.raises(ValueError, match="at least one"):
        predict(model, Batches(images, 64), cpu, shifts=())
    separate = predict_views(model, Batches(images, 64), cpu, shifts=shifts)  # one pass, every view kept
    assert all(torch.equal(a.probabilities, b.probabilities) for a, b in zip(separate, views))


def test_with_tta_gives_the_image_as_it_is_and_the_mean_over_its_one_pixel_shifts(mnist):
    model, _ = run(mnist, seed=0, epochs=1)
    batches, cpu = Batches(mnist.test.head(200), 64), torch.device("cpu")
    plain, tta = with_tta(model, batches, cpu)
    assert torch.equal(plain.probabilities, predict(model, batches, cpu).probabilities)
    assert torch.equal(tta.probabilities, predict(model, batches, cpu, shifts=ONE_PIXEL_SHIFTS).probabilities)
    assert not torch.equal(plain.probabilities, tta.probabilities), "the shifts change what the model sees"
    given, again = with_tta(model, batches, cpu, plain=plain)  # the image as it is, already predicted: reused
    assert given is plain and torch.equal(again.probabilities, tta.probabilities)


def test_summary_leaves_batchnorm_statistics_and_random_state_alone():
    model = tiny_cnn()
    before_stats = model[1].running_mean.clone()
    before_rng = torch.get_rng_state()
    text = summary(model)
    assert "Conv2d-1" in text and f"{count_parameters(model):,}" in text
    assert torch.equal(model[1].running_mean, before_stats)
    assert torch.equal(torch.get_rng_state(), before_rng)


def test_last_layer_is_the_classifier_wherever_it_sits():
    skeleton, step2 = models.Model_1(), models.Model_2()
    assert last_layer(skeleton) is skeleton.net[-2], "the 6×6 convolution, before a Flatten without weights"
    assert last_layer(step2) is step2.net[-1], "the linear layer after GAP"
    with pytest.raises(ValueError, match="no layer with weights"):
        last_layer(nn.Sequential(nn.ReLU(), nn.Flatten()))


def test_receptive_field_table():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 8, 3), nn.AdaptiveAvgPool2d(1))
    rows = receptive_field(model)
    assert [(r["size"], r["jump"], r["rf"]) for r in rows] == [(28, 1, 1), (26, 1, 3), (13, 2, 4), (11, 2, 8), (1, 2, 28)]
    assert rows[-1]["kernel"] == 11, "global average pooling spans the whole 11×11 map"
    assert last_convolution_field(rows) == 8, "the classifier's inputs: the last convolution's field, not the pool's"
    with pytest.raises(ValueError, match="no Conv2d"):
        last_convolution_field(receptive_field(nn.Sequential(nn.MaxPool2d(2), nn.Flatten())))


def test_split_facts_say_what_a_split_holds():
    images = torch.zeros(3, 28, 28, dtype=torch.uint8)
    images[1, 5, 5] = 200
    assert split_facts(ImageSet(images, torch.tensor([7, 2, 7]))) == {
        "images": 3, "shape": (28, 28), "dtype": "uint8", "labels": [2, 7], "pixel range": (0, 200)}


def test_duplicates_are_found_exactly():
    images = torch.randint(0, 256, (6, 28, 28), dtype=torch.uint8)
    queries = torch.stack([images[3], torch.zeros(28, 28, dtype=torch.uint8), images[0]])
    assert exact_duplicates(images, queries).tolist() == [0, 2]
    assert count_repeats(torch.cat([images, images[:2]])) == 2


def test_plots_return_figures(mnist):
    _, history = run(mnist, seed=0, epochs=1)
    confusion = confusion_matrix(mnist.test.labels[:100], mnist.test.labels[:100].roll(1))
    two = plot_history({"a": history, "b": history})  # colour names the run, line style the measurement
    assert [t.get_text() for t in two.axes[1].get_legend().get_texts()] == ["a", "b"]
    assert [t.get_text() for t in two.axes[0].get_legend().get_texts()] == ["train, during each epoch", "test"]
    one = plot_history(history)
    assert [t.get_text() for t in one.axes[1].get_legend().get_texts()] == ["train, during each epoch", "test"]
    for figure in (two,
                   plot_confusion(confusion), plot_per_class(per_class_metrics(confusion)),
                   plot_class_counts(mnist.train.labels, mnist.test.labels),
                   plot_samples(mnist.test.images, mnist.test.labels, per_class=2)):
        drawn = [artist for axes in figure.axes
                 for artist in (*axes.lines, *axes.images, *axes.patches, *axes.collections)]
        assert drawn, "every plot draws something"
    errors = int((mnist.test.labels[:100] != mnist.test.labels[:100].roll(1)).sum())
    heatmap = plot_confusion(confusion).axes[0]
    assert heatmap.get_title() == f"{errors} errors of 100" and heatmap.collections[0].get_array().size == 100
    assert sum(len(axes.images) for axes in plot_samples(mnist.test.images, mnist.test.labels, per_class=2).axes) == 20
