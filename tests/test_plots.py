"""What the training curves and per-class charts show: the axis zoomed to where runs differ, with what it leaves
out said on the plot; loss ticks a reader can read; per-class charts of several models on one scale."""
import torch

from mnist_utils.engine import History
from mnist_utils.evaluation import per_class_metrics
from mnist_utils.plots import plot_history, plot_per_class, plot_test_accuracy


def history(test_acc, loss=None, column="test"):
    """A History with `test_acc` per epoch (or 'val' for `column`), training 0.5 points under it, and `loss`."""
    loss = loss or [1.0 / epoch for epoch in range(1, len(test_acc) + 1)]
    return History([{"epoch": epoch, "train_loss": value * 1.1, "train_acc": acc - 0.5, f"{column}_loss": value,
                     f"{column}_acc": acc} for epoch, (acc, value) in enumerate(zip(test_acc, loss), 1)])


def legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_test_accuracy_zooms_past_the_first_epochs_and_says_what_falls_below():
    run = history([96.0, 98.7, 99.0, 99.2, 99.1, 99.3, 99.35, 99.3])
    figure = plot_test_accuracy({"a": run, "b": run}, target=99.4)
    ax = figure.axes[0]
    bottom, top = ax.get_ylim()
    assert 98.7 < bottom < 99.0 and top > 99.4, "the first two epochs off the axis, the target on it"
    assert legend_texts(ax)[-1].startswith("4 values below 98.9%"), "each run's first two epochs, counted"
    assert ax.get_xlim()[0] == 0.5, "the axis starts at epoch 1"
    figure.canvas.draw()
    target_y = ax.transData.transform((1, 99.4))[1]
    legend = ax.get_legend().get_window_extent()
    assert not legend.y0 <= target_y <= legend.y1, "the legend leaves the target line clear"


def test_nothing_below_the_axis_means_no_note():
    figure = plot_test_accuracy(history([99.0, 99.1, 99.2, 99.3]), target=99.4)
    assert not any("below" in text for text in legend_texts(figure.axes[0]))


def test_history_zooms_many_curves_but_not_a_short_run():
    long = {name: history([80.0, 97.0, 98.5, 99.0, 99.2, 99.3, 99.4, 99.4], column="val") for name in "ab"}
    ax = plot_history(long).axes[1]
    assert 97.0 < ax.get_ylim()[0] < 98.0, "zoomed to the epochs after the first two"
    assert "below" in legend_texts(ax)[-1]
    five = plot_history({"a": history([96.0, 98.2, 98.4, 98.9, 98.9], column="val")}).axes[1]
    assert legend_texts(five)[-1].startswith("2 values below 97.6%"), "a five-epoch run loses only its first epoch"
    short = plot_history({"a": history([40.0, 80.0, 90.0], column="val")}).axes[1]
    assert short.get_ylim()[0] < 39.5, "a three-epoch run is mostly its first epochs: all of it shown"

    # a run stopped after 2 epochs beside 8-epoch ones: its first epoch is as early as theirs, and off the axis too
    cut_short = plot_history({**long, "c": history([85.0, 98.8], column="val")}).axes[1]
    assert cut_short.get_ylim() == ax.get_ylim(), "the short run's first epochs do not stretch the axis"


def test_loss_axis_is_log_only_over_a_decade_and_labelled_in_decimals():
    smoothed = plot_history(history([97.0, 98.0, 99.0], loss=[1.3, 0.7, 0.55])).axes[0]
    assert smoothed.get_yscale() == "linear", "label smoothing floors the loss: less than a decade"
    falling = plot_history(history([97.0, 98.0, 99.0, 99.2], loss=[0.8, 0.2, 0.05, 0.02])).axes[0]
    falling.figure.canvas.draw()
    assert falling.get_yscale() == "log"
    labels = [t.get_text() for t in falling.get_yticklabels() if t.get_text()]
    assert {"0.05", "0.1", "0.2", "0.5"} <= set(labels), labels
    assert not any("times" in label or "^" in label for label in labels), "no 5×10⁻² mathtext"


def test_per_class_charts_of_similar_models_share_one_scale():
    def metrics(errors):
        confusion = torch.diag(torch.full((10,), 1000))
        for true, predicted in errors:
            confusion[true, true] -= 1
            confusion[true, predicted] += 1
        return per_class_metrics(confusion)

    better = plot_per_class(metrics([(3, 5)] * 4)).axes[0]
    worse = plot_per_class(metrics([(9, 4)] * 12 + [(2, 7)] * 5)).axes[0]
    assert better.get_ylim() == worse.get_ylim(), "one scale: bars compare by eye across the models' charts"
    assert legend_texts(better) == ["precision", "recall", "F1"]


def test_epochs_that_measured_nothing_are_left_out_of_the_zoom():
    # a run validated from its second epoch on has None where the first would be (train does this)
    run = History([{"epoch": 1, "train_loss": 1.0, "train_acc": 95.0, "val_loss": None, "val_acc": None}]
                  + [{"epoch": e, "train_loss": 1.0 / e, "train_acc": 98.0 + e / 10, "val_loss": 0.5 / e,
                      "val_acc": 98.5 + e / 10} for e in range(2, 8)])
    ax = plot_history(run).axes[1]
    bottom, top = ax.get_ylim()
    assert bottom < 98.5 and top > 99.2 and "val" in " ".join(legend_texts(ax))


def test_the_loss_floor_is_drawn_and_named_where_there_is_one():
    runs = {"a": history([97.0, 98.0, 99.0], loss=[1.3, 0.7, 0.55]), "b": history([97.5, 98.5, 99.1])}
    for shown in (runs, runs["a"]):  # several runs: the legend of line styles; one: its own lines'
        ax = plot_history(shown, loss_floor=0.5003).axes[0]
        assert [line.get_ydata()[0] for line in ax.lines if line.get_linestyle() == "-."] == [0.5003]
        assert "lowest possible, 0.500" in legend_texts(ax)
    assert not any(line.get_linestyle() == "-." for line in plot_history(runs).axes[0].lines), "none without one"
