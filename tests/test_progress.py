"""What a run shows while it trains: a progress bar that suits where its output goes, and each epoch's line."""
import io
import sys

from mnist_utils import engine
from mnist_utils.config import HEADLESS_ENV


def test_a_text_bar_whose_stderr_is_a_file_updates_every_half_minute_not_ten_times_a_second(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delenv(HEADLESS_ENV, raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # `2> log`: a 4-minute training wrote 1,692 updates there
    assert engine.progress_bar(range(3)).mininterval == engine.FILE_INTERVAL == 30.0
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert engine.progress_bar(range(3)).mininterval == 0.1, "a terminal's bar moves as tqdm moves it"
    assert engine.progress_bar(range(3), mininterval=1.0).mininterval == 1.0


def test_an_epochs_line_names_each_figure_and_gives_accuracies_in_percent():
    row = {"epoch": 1, "train_loss": 0.42519, "train_acc": 88.08, "train_eval_acc": 98.43, "val_acc": None,
           "test_acc": 98.73, "seconds": 36.7}
    assert engine.row_summary(row) == "train loss 0.4252, train 88.08%, train scored as test 98.43%, test 98.73%"
