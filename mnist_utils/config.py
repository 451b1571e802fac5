"""Where things live, which profile is running, which device to use, what the runner tells a notebook's kernel
(headless, its lanes, its pending folder): decided here, once. How a command reads its arguments and ends is
commands.py's."""
from __future__ import annotations

import contextlib
import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

PROJECT_ROOT = Path(__file__).resolve().parents[1]

PROFILES = ("full", "smoke")

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
# A source notebook's stem is NN_name: copies that executors write beside it (00_eda.nbconvert.ipynb,
# 00_eda-output.ipynb) are not notebooks of the series.
SOURCE_STEM = re.compile(r"[0-9]{2}_\w+")


def data_root() -> Path:
    """Folder holding `MNIST/raw/` (override with MNIST_DATA_ROOT; set but empty, as `MNIST_DATA_ROOT= make`
    leaves it, is the default, not the current folder)."""
    return Path(os.environ.get("MNIST_DATA_ROOT") or PROJECT_ROOT / "data")


def reports_root() -> Path:
    """The reports folder (override with MNIST_REPORTS_DIR; empty is the default); each profile's outputs: see
    `reports_dir`."""
    return Path(os.environ.get("MNIST_REPORTS_DIR") or PROJECT_ROOT / "reports")


def reports_dir(profile: str | None = None, base: Path | str | None = None) -> Path:
    """Folder for the executed notebooks, HTML and results JSON of `profile` (default: the active one):
    `base` (default `reports_root()`) for the full profile, its smoke/ subfolder for the smoke profile,
    so that a quick check never replaces the outputs of a full run."""
    base = Path(base) if base is not None else reports_root()
    name = get_profile(profile).name
    return base if name == "full" else base / name


@dataclass(frozen=True)
class Profile:
    """How big a run is. `full` is the real thing; `smoke` checks that everything runs, in seconds."""

    name: str
    train_images: int | None  # None: the whole training set
    test_images: int | None
    max_epochs: int | None  # None: as many as the notebook asks for
    seeds: int | None  # at most this many of a config's seeds (None: every seed it lists)

    @property
    def is_smoke(self) -> bool:
        return self.name == "smoke"

    def epochs(self, wanted: int) -> int:
        """The number of epochs to run when a notebook wants `wanted`."""
        return wanted if self.max_epochs is None else min(wanted, self.max_epochs)

    def images_kept(self) -> str:
        """What this profile keeps of MNIST's images, in words ('the first 2,048 training and 512 test images');
        '' where it keeps them all."""
        images = [f"{count:,} {split}" for count, split in ((self.train_images, "training"), (self.test_images, "test"))
                  if count is not None]
        return f"the first {' and '.join(images)} images" if images else ""

    def subset(self, n_available: int, split: str = "train") -> int:
        """How many images of a split of `n_available` this profile uses."""
        cap = self.train_images if split == "train" else self.test_images
        return n_available if cap is None else min(cap, n_available)


_PROFILES = {
    "full": Profile("full", train_images=None, test_images=None, max_epochs=None, seeds=None),
    "smoke": Profile("smoke", train_images=2048, test_images=1024, max_epochs=1, seeds=2),
}


@dataclass(frozen=True)
class NotebookPlan:
    """How `make notebooks` runs one notebook of the series."""
    # Minutes it may take in the full profile on 2 CPU cores, side by side with another where `reads` allows: a
    # wall time on a shared machine. The index shows each run's time beside it; the runner stops the notebook at
    # TIMEOUT_HEADROOM × it. The budgets fill SERIES_BUDGET_MINUTES (a schedule of them must fit: a test checks).
    budget: float
    # The earlier notebooks whose results it reads: it starts only after they finish. (The leaderboard of every
    # model is the index's, built from the results files after each notebook: no notebook waits for all the others.)
    reads: tuple[str, ...]  # given in every plan, () included: a notebook left out of the table waits for all before it


# Every notebook of the series, in the order the runner starts those ready (whose `reads` have finished): the
# longest chain, 01 → 02 → 03, first, with the highest priority; then 04, which 05 waits for; then 06, the longest
# of the rest, so that it starts beside 02 rather than after 05 and is not the one left running alone at the end
# (in number order, the first run of this layout ended with 06 alone); 05 last. A notebook not listed here has no
# budget (UNBUDGETED_TIMEOUT), waits for every notebook before it and starts after these, in number order.
NOTEBOOK_PLANS = {
    "00_eda": NotebookPlan(0.5, reads=()),
    # 01 and 02 run beside 04, one thread each; 02 now all of its time, beside 04's two ResNets: 3.1 minutes, where
    # it took 2.7 to 2.9 in the series' last four runs, and 01 2.8 to 3.0 (2.7 to 3.3 in the machine's slower phase)
    "01_step1_skeleton": NotebookPlan(3.25, reads=()),
    "02_step2_gap_dropout": NotebookPlan(3.25, reads=("01_step1_skeleton",)),
    # alone, in two lanes, 5.5 minutes; in one, beside another, 8.0 and 9.5 (last two runs)
    "03_step3_augment_onecycle": NotebookPlan(10.0, reads=("02_step2_gap_dropout",)),
    # five trainings, one at a time beside another notebook (four took 4.1 to 5.6 minutes)
    "04_vgg_resnet_blocks": NotebookPlan(6.5, reads=()),
    # four trainings: 7.1 minutes alone, in two lanes; 12.3 in one, beside another notebook
    "06_cnn_comparison": NotebookPlan(13.0, reads=()),
    "05_pretrained_finetune": NotebookPlan(3.5, reads=("04_vgg_resnet_blocks",)),
}
# The table's columns as series.py's functions take them (each also takes others: the tests' made-up series)
READS_RESULTS_OF = {stem: plan.reads for stem, plan in NOTEBOOK_PLANS.items()}
START_ORDER = tuple(NOTEBOOK_PLANS)
SERIES_BUDGET_MINUTES = 20
TIMEOUT_HEADROOM = 3.0  # a slower machine than the budget's still finishes; a hung kernel is still stopped
SMOKE_TIMEOUT = 600  # seconds, any notebook: the smoke profile's runs take seconds
UNBUDGETED_TIMEOUT = 1800  # seconds, a full-profile notebook without a budget


def budget_minutes(stem: str, profile: str) -> float | None:
    """The notebook's budget in minutes: full profile only (a smoke run checks that it runs, not its time)."""
    plan = NOTEBOOK_PLANS.get(stem)
    return plan.budget if plan and profile == "full" else None


def notebook_timeout(stem: str, profile: str) -> float:
    """Seconds the runner lets the notebook `stem` run under `profile` before stopping it."""
    if profile != "full":
        return SMOKE_TIMEOUT
    budget = budget_minutes(stem, profile)
    return UNBUDGETED_TIMEOUT if budget is None else TIMEOUT_HEADROOM * budget * 60


def get_profile(name: str | None = None) -> Profile:
    """The active profile: `name`, else $MNIST_PROFILE, else `full` (so a notebook opened in Jupyter runs for real)."""
    source = "profile" if name else "MNIST_PROFILE"  # the error names where the bad name came from
    name = (name or os.environ.get("MNIST_PROFILE") or "full").strip().lower()
    if name not in _PROFILES:
        raise ValueError(f"Unknown {source} {name!r}: use one of {', '.join(PROFILES)}.")
    return _PROFILES[name]


def get_device(prefer: str | None = None) -> torch.device:
    """CUDA when present, else CPU. `prefer` (or $MNIST_DEVICE) forces one: 'cpu', 'cuda' or 'cuda:N'. A device
    this project does not run on, or CUDA without a GPU, is a ValueError naming where the request came from."""
    source = "--device" if prefer else "MNIST_DEVICE"
    wanted = prefer or os.environ.get("MNIST_DEVICE")
    if not wanted:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(wanted)
    except RuntimeError:  # a name torch does not know
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ValueError(f"{source} {wanted!r} is not a device this project runs on: use 'cpu' or 'cuda'.")
    if device.type == "cuda" and not torch.cuda.is_available():
        fix = "leave it out or use 'cpu'" if prefer else "unset MNIST_DEVICE or set it to 'cpu'"
        raise ValueError(f"{source} asks for CUDA but torch sees no GPU: {fix}.")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"{source} asks for {device}, but torch sees {torch.cuda.device_count()} GPU(s): "
                         f"use cuda:0 to cuda:{torch.cuda.device_count() - 1}.")
    return device


def exact_cudnn() -> None:
    """Have cuDNN compute a GPU's convolutions the same way every run, and float32 as float32: its defaults allow
    kernels that add up in no fixed order and TF32 (a 10-bit mantissa) for float32; timing candidates to pick one
    (benchmark, off by default) would pick differently run to run. Training (`seed_everything`) and every test of a
    checkpoint (`Classifier.load`) set it."""
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.allow_tf32 = False


def generators_kept(device: torch.device) -> contextlib.AbstractContextManager:
    """A block whose draws and reseeding leave torch's generators as they were: the CPU's and, computing on a
    GPU, every GPU's (`torch.manual_seed` reseeds them all), so that a seeded run's draws do not shift."""
    return torch.random.fork_rng(devices=range(torch.cuda.device_count()) if device.type == "cuda" else [])


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on `device`: a GPU computes asynchronously, so a clock read without this
    times the queueing, not the computing."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def use_threads(threads: int | None) -> None:
    """Compute on `threads` CPU threads from here on (None: leave torch's default, one per core): what a
    notebook calls once, with its config's `threads`. A model's numbers depend on how many threads its sums are
    split over, so a recipe that fixes it gives the same numbers on any machine, alone or beside another notebook."""
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)


@contextlib.contextmanager
def computing_on(threads: int | None) -> Iterator[None]:
    """`use_threads(threads)` for the `with` block only: the caller's thread count comes back after it
    (training a recipe from code, or from the command line, computes as its notebook does)."""
    previous = torch.get_num_threads()
    try:
        use_threads(threads)
        yield
    finally:
        torch.set_num_threads(previous)


# ---------------------------------------------------------------------------- what the runner tells a kernel
# `make notebooks` runs each notebook in a kernel of its own and tells it these through its environment (run.py's
# execute_notebook, through kernel_env below); a notebook opened in Jupyter has none of them.
HEADLESS_ENV = "MNIST_HEADLESS"  # progress bars as text lines, which the runner folds to their last state
LANES_ENV = "MNIST_LANES"  # the most lanes a kernel's trainings may use, fixed: see lanes.lane_count
LANES_FILE_ENV = "MNIST_LANES_FILE"  # a file with the kernel's share of the cores now: see lanes_shared
PENDING_ENV = "MNIST_RESULTS_PENDING"  # where results and models go until the notebook finishes


def kernel_env(profile: str, reports_dir: Path | str) -> dict[str, str]:
    """The kernel's environment: ours, plus the profile, the reports folder (whose subfolder for the profile the
    notebook's Report writes to) and the data's folder."""
    env = dict(os.environ)
    env["MNIST_PROFILE"] = profile
    env["MNIST_REPORTS_DIR"] = str(Path(reports_dir).resolve())
    env["MNIST_DATA_ROOT"] = str(data_root().resolve())  # the kernel runs in notebooks/: a relative one is ours
    env[HEADLESS_ENV] = "1"  # progress bars as text lines, which coalescing folds to their final state
    # The kernel runs in notebooks/, so make the project importable even without `pip install -e .`.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    # A headless shell often sets MPLBACKEND=Agg; ipykernel only picks its inline backend (figures
    # embedded in the report) when the variable is unset.
    env.pop("MPLBACKEND", None)
    # debugpy's "frozen modules" warning goes to our stderr in the middle of a progress line.
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return env


def headless() -> bool:
    """Whether progress is shown as text lines rather than Jupyter widgets: set by the runner, which keeps a cell's
    text output (and by anyone who wants text bars)."""
    return bool(os.environ.get(HEADLESS_ENV))


def lanes_asked() -> int | None:
    """The lanes $MNIST_LANES asks for, or None where it is unset; anything but a whole number, 1 or more, is a
    ValueError that names the fix."""
    value = os.environ.get(LANES_ENV)
    if value is not None and (not value.isdecimal() or int(value) < 1):
        raise ValueError(f"{LANES_ENV}={value!r}: give a whole number of lanes, 1 or more, or unset it")
    return None if value is None else int(value)


def lanes_shared(most: int) -> int:
    """How many of `most` lanes may compute now: the number in the file $MNIST_LANES_FILE names, which `make
    notebooks` rewrites as the notebooks beside this kernel start and end (its share of the cores: 1 of 2 while
    another notebook runs beside it, 2 once it runs alone); `most` where that is unset. A file that cannot be read
    (the runner writes it whole, before the kernel starts, so only a broken run) gives 1: never more threads than
    cores."""
    path = os.environ.get(LANES_FILE_ENV)
    if not path:
        return most
    try:
        share = int(Path(path).read_text())
    except (OSError, ValueError):
        return 1
    return min(most, max(1, share))


def pending_dir() -> Path | None:
    """The folder a notebook's results and models go to until it finishes (the runner then moves them into
    place, so an interrupted run never replaces finished ones); None outside the runner: straight into place."""
    pending = os.environ.get(PENDING_ENV)
    return Path(pending) if pending else None


def usable_cpus() -> int:
    """CPU cores this process may run on (fewer than the machine's under a container or taskset)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def hardware(device: torch.device | None = None) -> str:
    """The processor and the hardware threads this process may use, e.g. 'AMD EPYC, 2 CPU threads' (the machine's,
    not torch's thread count, which a config may fix lower), and the GPU if `device` is one."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{name}, {usable_cpus()} CPU threads"
    if device is not None and device.type == "cuda":  # not merely present: a run on the CPU names none
        text += f", GPU {torch.cuda.get_device_name(device)}"
    return text


def find_notebooks(notebooks_dir: Path | str = NOTEBOOKS_DIR, selectors: Sequence[str] = ()) -> list[Path]:
    """The notebooks that `selectors` name (all when none), in number order.

    Only source notebooks count (`NN_name.ipynb`: two digits, an underscore, letters, digits and
    underscores), not the copies executors write beside them. A selector is a number (`00`, `3` for
    `03_...`) or a stem (`00_eda`, `00_eda.ipynb` works too), or the path of one in `notebooks_dir`. An unknown
    selector raises ValueError listing the notebooks there are; a path elsewhere, one naming the folder to give.
    """
    available = sorted(p for p in Path(notebooks_dir).glob(NOTEBOOK_GLOB) if SOURCE_STEM.fullmatch(p.stem))
    if not selectors:
        return available
    chosen: set[Path] = set()
    for selector in selectors:
        folder = Path(selector).expanduser().parent
        if folder != Path(".") and folder.resolve() != Path(notebooks_dir).resolve():  # not run from a copy
            raise ValueError(f"{selector} is not in {notebooks_dir}, whose notebooks run: name one of those, or give "
                             f"the notebooks' folder (--notebooks {folder})")
        name = Path(selector).name.removesuffix(".ipynb")
        if name.isdecimal():
            matches = [p for p in available if int(p.name[:2]) == int(name)]
        else:
            matches = [p for p in available if p.stem == name]
        if not matches:
            listing = ", ".join(p.stem for p in available) or f"none: no {NOTEBOOK_GLOB} in {notebooks_dir}"
            raise ValueError(f"No notebook matches {selector!r}. Available: {listing}")
        chosen.update(matches)
    # Number order whatever order the selectors came in: later notebooks read earlier ones' results.
    return sorted(chosen)


def counted(count: int, noun: str) -> str:
    """'1 epoch', '15 epochs', '2,048 images': a count with its noun, plural unless the count is one."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def first_line(text: Any, limit: int = 200) -> str:
    """The first line of `text` that is not blank, cut to `limit` characters: an error in one line."""
    line = next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"
