import io
import signal

import pytest
import torch

from mnist_utils.checkpoints import recipe_fields, save_checkpoint
from mnist_utils.config import get_device
from mnist_utils.data import load_mnist
from mnist_utils.recipes import load_config
from mnist_utils.training import run_recipe


@pytest.fixture(scope="session")
def mnist():
    """The real MNIST, loaded once (`make test` fetches and verifies it first)."""
    return load_mnist()


@pytest.fixture(scope="session")
def step3_checkpoint(tmp_path_factory, mnist):
    """A genuinely good model, saved as a checkpoint: Model_3 trained with Step 3's recipe for one epoch over
    half the training set (well above 97% test accuracy; seconds on an idle CPU, a minute on a busy one). The
    preprocessing, command-line, API and browser tests all use it."""
    # one CPU thread: float32 sums in one order, so every machine trains the same checkpoint
    recipe = load_config("step3", ["train_fraction=0.5", "threads=1"]).with_epochs(1)
    device = get_device()
    model, history = run_recipe(recipe, mnist, device, seed=1, progress=None)
    return save_checkpoint(model.cpu(), tmp_path_factory.mktemp("models") / "step3", **recipe_fields(recipe, device),
                           seed=1, epochs=1, title="Model_3, one epoch of Step 3 on half the data", source="tests/conftest.py",
                           metrics={"test_acc": history["test_acc"][-1], "test_loss": history["test_loss"][-1]})


def picture(digit: torch.Tensor, *, size: int = 140, canvas: tuple[int, int] = (300, 220),
            at: tuple[int, int] = (150, 60), dark_ink: bool = True, fmt: str = "PNG", mode: str = "L") -> bytes:
    """An MNIST digit (uint8 28×28) as a picture someone might upload: enlarged to `size`×`size`, pasted at
    `at` (left, top) on a `canvas` (width, height), dark ink on light paper unless `dark_ink` is False,
    encoded as `fmt` in colour `mode`."""
    from PIL import Image, ImageOps

    enlarged = Image.fromarray(digit.numpy()).resize((size, size), Image.Resampling.BICUBIC)
    sheet = Image.new("L", canvas, 0)
    sheet.paste(enlarged, at)
    if dark_ink:
        sheet = ImageOps.invert(sheet)
    buffer = io.BytesIO()
    sheet.convert(mode).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def make_picture():
    """`picture`, for tests: an MNIST digit turned into an uploadable picture."""
    return picture


def default_stop_signals() -> None:
    """In a child process (Popen's preexec_fn): SIGINT, SIGTERM and SIGHUP as a terminal's foreground job has them,
    whatever the test run inherited (a shell ignores SIGINT in what it starts in the background; nohup, SIGHUP)."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


@pytest.fixture
def python_handles_ctrl_c():
    """Python's own SIGINT handler for the test's length: Python raises KeyboardInterrupt only where SIGINT was not
    ignored when it started, and a shell ignores it in what it starts in the background (`make test &`)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
