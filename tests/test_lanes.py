"""Lanes: independent trainings at once, one thread each, with the numbers of each trained alone."""
import io
import os
import signal
import threading
import time

import pytest
import torch
import torch.nn as nn
from tqdm import tqdm

import models
from mnist_utils import training
from mnist_utils.augment import Augment
from mnist_utils.batches import Batches
from mnist_utils.config import lanes_shared
from mnist_utils.data import MNIST
from mnist_utils.engine import seed_everything
from mnist_utils.evaluation import ONE_PIXEL_SHIFTS, predict_views
from mnist_utils.lanes import draws_global_randomness, lanes_for, lanes_to_evaluate, run_in_lanes
from mnist_utils.recipes import Recipe
from mnist_utils.training import _AtATime, seed_packs, train_recipe, train_seeds

RECIPE = Recipe(model="Model_3", epochs=1, batch_size=128, lr=0.1, scheduler="onecycle",
                augment=Augment(rotation=7, translate=0.08))


def small(mnist, train=512, test=256):
    return MNIST(mnist.train.head(train), mnist.test.head(test))


@pytest.fixture
def three_threads():
    """The caller on 3 threads, a count no lane uses, so that a job can tell whose threads it runs on."""
    previous = torch.get_num_threads()
    torch.set_num_threads(3)
    yield
    torch.set_num_threads(previous)


def test_jobs_run_at_once_on_one_thread_each_and_come_back_in_order(three_threads):
    started, seen = threading.Barrier(2, timeout=10), []

    def job(i):
        started.wait()  # both jobs must be running for either to pass: they really run at once
        seen.append((torch.get_num_threads(), threading.current_thread().name))
        return i * 10

    assert run_in_lanes([lambda i=i: job(i) for i in range(2)], lanes=2) == [0, 10]
    assert {threads for threads, _ in seen} == {1}
    assert len({name for _, name in seen}) == 2
    assert torch.get_num_threads() == 3, "the caller's thread count is restored"


def test_one_lane_runs_the_jobs_in_turn_on_one_thread_and_no_lanes_on_the_callers_threads(three_threads):
    order = []

    def job(i):
        order.append(i)
        return torch.get_num_threads()

    assert run_in_lanes([lambda: job(1), lambda: job(2)], lanes=1) == [1, 1]
    assert run_in_lanes([lambda: job(3), lambda: job(4)], lanes=None) == [3, 3]
    assert order == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="at least 1"):
        run_in_lanes([], lanes=0)


def test_a_failing_job_stops_the_other_lanes_at_once():
    steps = []

    def long_job():
        for step in range(600):  # 30 s if nothing stopped it
            steps.append(step)
            time.sleep(0.05)
        return "finished"

    def broken():
        time.sleep(0.3)
        raise RuntimeError("job failed")

    before = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="job failed"):
        run_in_lanes([long_job, broken, long_job], lanes=2)
    assert len(steps) < 100, "the long job was interrupted, not waited for"  # 1,200 if both long jobs finished
    assert torch.get_num_threads() == before
    assert not [t for t in threading.enumerate() if t.name.startswith("lane-") and t.is_alive()], "no lane is left running"


def test_after_a_job_fails_no_lane_starts_another():
    started = []

    def partner():  # busy until the failure's interrupt reaches it; then it ends as a job that had just finished
        deadline = time.monotonic() + 5
        try:
            while time.monotonic() < deadline:
                time.sleep(0.01)
        except KeyboardInterrupt:
            pass
        return 1

    def broken():
        raise RuntimeError("job failed")

    def later():
        started.append(1)

    with pytest.raises(RuntimeError, match="job failed"):
        run_in_lanes([partner, broken, later], lanes=2)
    assert not started, "the lane whose job ended after the failure took no new one"


def test_ctrl_c_stops_every_lane(python_handles_ctrl_c):
    steps = []

    def long_job():
        for step in range(600):
            steps.append(step)
            time.sleep(0.05)

    threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()  # Ctrl-C, as a terminal sends it
    with pytest.raises(KeyboardInterrupt):
        run_in_lanes([long_job, long_job], lanes=2)
    assert len(steps) < 100, "both jobs were interrupted"  # 1,200 if they finished
    assert not [t for t in threading.enumerate() if t.name.startswith("lane-") and t.is_alive()], "no lane is left running"


def test_models_with_torchs_own_dropout_gpus_and_more_threads_get_no_lanes(monkeypatch):
    monkeypatch.delenv("MNIST_LANES", raising=False)  # a lane count set from outside would win over the CPUs
    monkeypatch.setattr("mnist_utils.lanes.usable_cpus", lambda: 4)
    assert draws_global_randomness(models.ExampleNet()) and not draws_global_randomness(models.Model_3())
    assert not draws_global_randomness(nn.Sequential(nn.Flatten(), nn.Dropout(0.0)))  # drops nothing: draws nothing
    assert lanes_for([models.Model_3(), models.Model_3()], torch.device("cpu")) == 4
    assert lanes_for([models.Model_3(), models.ExampleNet()], torch.device("cpu")) is None  # torch's own dropout
    assert lanes_for([models.Model_3()], torch.device("cuda")) is None
    assert lanes_for([models.Model_3()], torch.device("cpu"), threads=2) is None, "a lane computes on one thread"
    # Model_2's, MiniVGG's and TwoBranchCNN's dropout draws from a generator of its own: they may train in lanes.
    assert not draws_global_randomness(models.Model_2())
    assert lanes_for([models.Model_2(), models.Model_3()], torch.device("cpu")) == 4
    assert lanes_for([models.MiniVGG(widths=(16, 32, 64)), models.TwoBranchCNN()], torch.device("cpu")) == 4


def test_make_notebooks_can_give_a_notebook_fewer_lanes_than_cpus(monkeypatch):
    monkeypatch.setattr("mnist_utils.lanes.usable_cpus", lambda: 4)
    monkeypatch.delenv("MNIST_LANES", raising=False)
    assert lanes_for([models.Model_3()], torch.device("cpu")) == 4
    monkeypatch.setenv("MNIST_LANES", "1")
    assert lanes_for([models.Model_3()], torch.device("cpu")) == 1
    for bad in ("0", "two", "-1", "", "²"):  # "²" is a digit to str.isdigit, not to int
        monkeypatch.setenv("MNIST_LANES", bad)
        with pytest.raises(ValueError, match="MNIST_LANES.*whole number of lanes, 1 or more"):
            lanes_for([models.Model_3()], torch.device("cpu"))


@pytest.mark.parametrize("p", [0.5, 0.05])  # a draw per element (06), and drops placed by their gaps (Model_2)
def test_seeded_dropout_draws_the_same_masks_whatever_the_global_generator_does(p):
    x = torch.ones(64, 512)
    masks = []
    for later_seed in (5, 9):  # what other work does to the global generator between build and training
        torch.manual_seed(0)
        dropout = models.SeededDropout(p).train()  # built from the model's seed
        torch.manual_seed(later_seed)
        masks.append(torch.stack([dropout(x), dropout(x)]))
    assert torch.equal(masks[0], masks[1]), "the same seed at build: the same masks"
    assert not torch.equal(masks[0][0], masks[0][1]), "a new mask for each batch"
    torch.manual_seed(1)
    assert not torch.equal(models.SeededDropout(p).train()(x), masks[0][0]), "another seed, other masks"
    if p < models.SeededDropout.SPARSE_BELOW:  # the first mask's drops: where `dropped` puts them, from the seed
        expected = torch.full_like(x, 1 / (1 - p)).flatten().index_fill_(
            0, dropout.dropped(x.numel(), torch.Generator().manual_seed(dropout.seed)), 0.0).view_as(x)
        assert torch.equal(masks[0][0], expected)
        return
    kept = masks[0] > 0
    assert set(masks[0][kept].tolist()) == {2.0} and 0.45 < kept.float().mean() < 0.55  # kept ones scaled by 1/(1-p)
    assert torch.equal(dropout.eval()(x), x), "evaluation: no dropout"
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        models.SeededDropout(1.0)
    # p = 0.5 (06's dense layers): a draw per element, exactly torch's Bernoulli mask from the layer's seed
    torch.manual_seed(0)
    dropout = models.SeededDropout(0.5).train()
    expected = torch.empty_like(x).bernoulli_(0.5, generator=torch.Generator().manual_seed(dropout.seed)) * 2
    assert torch.equal(dropout(x), expected)


def test_sparse_dropout_drops_each_element_independently_with_probability_p():
    torch.manual_seed(0)
    dropout = models.SeededDropout(0.05).train()  # Model_2's p: the drops' positions are drawn, not a mask
    assert dropout.p < dropout.SPARSE_BELOW
    x = torch.ones(64, 16, 24, 24).contiguous(memory_format=torch.channels_last)
    generator = torch.Generator().manual_seed(dropout.seed)  # the layer's own stream, from its start
    y = dropout(x)
    assert y.is_contiguous(memory_format=torch.channels_last), "the layout the convolutions chose is kept"
    assert y.unique().tolist() == [0.0, pytest.approx(1 / 0.95)], "kept ones scaled by 1/(1-p)"
    in_memory_order = y.permute(0, 2, 3, 1).flatten()  # channels_last stores (N, H, W, C)
    assert torch.equal(torch.nonzero(in_memory_order == 0).flatten(), dropout.dropped(x.numel(), generator))
    assert abs((y == 0).double().mean().item() - 0.05) < 0.002
    strided = torch.randn(64, 32, 24, 24)[:, ::2]  # not dense: the scale is made dense, and covers every element
    z = dropout(strided)
    assert abs((z == 0).double().mean().item() - 0.05) < 0.002
    assert torch.allclose(z[z != 0], strided[z != 0] / 0.95)
    assert dropout.dropped(0, generator).numel() == 0 and dropout(torch.ones(0, 16, 4, 4)).shape == (0, 16, 4, 4)
    dropped = torch.stack([dropout(torch.ones(1000)) == 0 for _ in range(2000)]).double()  # 2 million elements
    rate = dropped.mean().item()
    assert abs(rate - 0.05) < 5 * (0.05 * 0.95 / dropped.numel()) ** 0.5, rate  # within 5 standard errors
    per_position = dropped.mean(dim=0)  # every position alike, the first and the last included
    assert per_position.min() > 0.02 and per_position.max() < 0.085
    both = (dropped[:, 1:] * dropped[:, :-1]).mean().item()  # neighbours: independent, so p² together
    assert abs(both - 0.05 ** 2) < 5 * (0.05 ** 2 / dropped[:, 1:].numel()) ** 0.5, both
    # Rounds too short to place every drop at once continue the same stream: the same drops as one round.
    indices = dropout.dropped(100_000, torch.Generator().manual_seed(3))
    assert torch.equal(dropout.dropped(100_000, torch.Generator().manual_seed(3), spare=-20.0), indices)
    assert bool((indices.diff() > 0).all()) and 0 <= int(indices[0]) and int(indices[-1]) < 100_000
    assert torch.equal(dropout.eval()(x), x), "evaluation: no dropout"


def trained_alone_on_one_thread(recipe, data, seed):
    seed_everything(seed)
    model = models.Model_3()
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        history = train_recipe(model, recipe, data, torch.device("cpu"), seed=seed, progress=None)
    finally:
        torch.set_num_threads(previous)
    return model, history


def test_a_job_in_a_lane_gives_exactly_the_numbers_of_the_same_job_alone_on_one_thread(mnist):
    data = small(mnist)
    built = {}
    for seed in (1, 2):  # built in turn, in the caller: initialisation draws from the global generator
        seed_everything(seed)
        built[seed] = models.Model_3()
    jobs = [lambda s=s: train_recipe(built[s], RECIPE, data, torch.device("cpu"), seed=s, progress=None) for s in (1, 2)]
    histories = run_in_lanes(jobs, lanes=2)
    for seed, history in zip((1, 2), histories):
        alone, alone_history = trained_alone_on_one_thread(RECIPE, data, seed)
        assert history["train_loss"] == alone_history["train_loss"]
        assert history["test_acc"] == alone_history["test_acc"]
        for (name, value), expected in zip(built[seed].state_dict().items(), alone.state_dict().values()):
            assert torch.equal(value, expected), name


def test_seeds_are_packed_in_a_fixed_way_whatever_the_machine():
    assert seed_packs([1, 2, 3, 4, 5]) == [[1, 2, 3], [4, 5]]
    assert seed_packs([1, 2]) == [[1, 2]]
    assert seed_packs([7]) == [[7]]
    assert seed_packs(list(range(7))) == [[0, 1, 2], [3, 4], [5, 6]]


def test_seeds_give_the_same_numbers_on_one_lane_and_on_two(mnist, monkeypatch):
    data, seeds = small(mnist), [1, 2, 3, 4]
    runs = {}
    for lanes in (1, 2):  # one lane: a one-core machine
        monkeypatch.setattr(training, "lanes_for", lambda models, device, threads, lanes=lanes: lanes)
        runs[lanes] = train_seeds(RECIPE, data, torch.device("cpu"), seeds=seeds, progress=None)
    for (one, one_history), (two, two_history) in zip(runs[1], runs[2]):
        assert one_history["test_acc"] == two_history["test_acc"]
        assert one_history["train_loss"] == two_history["train_loss"]
        for (name, value), expected in zip(one.state_dict().items(), two.state_dict().values()):
            assert torch.equal(value, expected), name
    # each history's seconds add up to the wall time of the whole run, shared by every seed
    assert len({round(history.seconds, 6) for _, history in runs[2]}) == 1


def test_recipes_run_at_once_give_what_run_recipe_gives_on_one_thread(mnist, monkeypatch):
    data = small(mnist)
    recipes = {"plain": RECIPE.replace(seeds=(3,)), "no augmentation": RECIPE.replace(augment=Augment(), seeds=(4,)),
               "dropout": RECIPE.replace(model="MiniVGG", model_args={"widths": (4, 8, 8)}, seeds=(5,))}
    monkeypatch.setattr(training, "lanes_for", lambda models, device, threads: 2)
    started = []
    monkeypatch.setattr(training, "train_recipe", lambda *args, train=training.train_recipe, **kwargs:
                        started.append(args[1].seeds[0]) or train(*args, **kwargs))
    runs = training.run_recipes(recipes, data, torch.device("cpu"), progress=None,
                                cost={"plain": 1, "no augmentation": 3, "dropout": 2})
    assert list(runs) == list(recipes), "in the recipes' order, whichever started first"
    assert set(started[:2]) == {4, 5} and started[2] == 3, "the costliest first, one per lane, the cheapest last"
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name, recipe in recipes.items():
            model, history = training.run_recipe(recipe, data, torch.device("cpu"), progress=None)
            assert runs[name][1]["test_acc"] == history["test_acc"], name
            assert all(torch.equal(a, b) for a, b in zip(runs[name][0].state_dict().values(), model.state_dict().values()))
    finally:
        torch.set_num_threads(previous)


def test_trainings_in_lanes_draw_one_bar_for_all_their_epochs_or_none():
    # progress as fit takes it, where it has a meaning here: 'epochs' or None ('batches', or a bool, is refused)
    from mnist_utils.training import _bar
    assert _bar(None, 5, "x").__class__.__name__ == "nullcontext"
    with _bar("epochs", 5, "x") as bar:
        assert bar.total == 5
    for wrong in ("batches", True, False):
        with pytest.raises(ValueError, match="'epochs' .* or None"):
            _bar(wrong, 5, "x")


def test_lanes_compute_no_more_at_once_than_the_kernels_share_and_take_a_core_as_soon_as_it_frees(tmp_path,
                                                                                                  monkeypatch):
    share = tmp_path / "share"  # as make notebooks writes it: the kernel's share of the cores now
    share.write_text("1")
    monkeypatch.setenv("MNIST_LANES_FILE", str(share))
    active, most, lock = [0], [0], threading.Lock()

    def job(i):
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        time.sleep(0.2)
        with lock:
            active[0] -= 1
        return i

    told = []  # what each start is told: how many may run at once
    assert run_in_lanes([lambda i=i: job(i) for i in range(4)], lanes=2, on_start=told.append) == [0, 1, 2, 3]
    assert most[0] == 1 and told == [1, 1, 1, 1], "a share of one core: one at a time, though two lanes were asked for"

    both = threading.Barrier(2, timeout=10)  # passes only while both jobs run at once

    def first():  # the notebook beside this one ends, and the runner gives this one both cores
        share.write_text("2")
        both.wait()
        return "first"

    def second():
        both.wait()
        return "second"

    told = []
    assert run_in_lanes([first, second], lanes=2, on_start=told.append) == ["first", "second"]
    assert told == [1, 2]
    share.write_text("1")  # a benchmark timing two lanes side by side takes both cores whatever the share
    assert sorted(run_in_lanes([both.wait, both.wait], lanes=2, shared=False)) == [0, 1]


def test_a_bar_says_how_many_trainings_ran_at_once_and_when_a_freed_core_was_taken():
    bar = tqdm(total=4, desc="5 seeds in 2 packs", file=io.StringIO())
    at_a_time = _AtATime(bar, lanes=2)
    for at_once in (1, 1, 2, 2, 1):  # a notebook beside it ended after two starts; a smaller share is not news
        at_a_time(at_once)
    assert bar.desc == "5 seeds in 2 packs, 1 at a time, then 2"
    alone = tqdm(total=4, desc="4 recipes", file=io.StringIO())
    _AtATime(alone, lanes=None)
    assert alone.desc == "4 recipes, one after another"


def test_a_kernels_share_of_the_cores_is_its_files_number_within_the_lanes_asked(tmp_path, monkeypatch):
    monkeypatch.delenv("MNIST_LANES_FILE", raising=False)
    assert lanes_shared(4) == 4, "outside make notebooks: every lane"
    share = tmp_path / "share"
    monkeypatch.setenv("MNIST_LANES_FILE", str(share))
    for text, expected in (("3", 3), ("9", 4), ("0", 1)):
        share.write_text(text)
        assert lanes_shared(4) == expected, text
    for broken in ("", "two"):
        share.write_text(broken)
        assert lanes_shared(4) == 1, "a broken share never gives more threads than cores"
    share.unlink()
    assert lanes_shared(4) == 1


def test_jobs_from_an_iterator_are_made_as_lanes_free_up_and_come_back_in_order():
    made, done = [], []

    def jobs():
        for i in range(6):
            made.append((i, len(done)))  # how many jobs had finished when job i was made
            yield lambda i=i: done.append(i) or i * i

    assert run_in_lanes(jobs(), lanes=2) == [0, 1, 4, 9, 16, 25]
    assert all(finished >= i - 2 for i, finished in made), f"made ahead of the lanes: {made}"


def test_evaluations_get_lanes_on_one_cpu_thread_in_the_main_thread_only(monkeypatch, three_threads):
    monkeypatch.delenv("MNIST_LANES", raising=False)
    monkeypatch.setattr("mnist_utils.lanes.usable_cpus", lambda: 4)
    cpu = torch.device("cpu")
    assert lanes_to_evaluate(cpu, 40) is None, "on 3 threads a batch would compute on 3: other numbers in a lane"
    torch.set_num_threads(1)
    assert lanes_to_evaluate(cpu, 40) == 4 and lanes_to_evaluate(cpu, 3) == 3, "a lane for each batch at most"
    assert lanes_to_evaluate(cpu, 1) is None, "one batch (the page's picture): no threads to start"
    assert lanes_to_evaluate(torch.device("cuda"), 40) is None
    assert run_in_lanes([lambda: lanes_to_evaluate(cpu, 40)], lanes=2) == [None], "a lane starts no lanes"
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert lanes_to_evaluate(cpu, 40) is None, "autocast holds in the thread that entered it, not in a lane"
    monkeypatch.setenv("MNIST_LANES", "1")
    assert lanes_to_evaluate(cpu, 40) is None


@pytest.mark.parametrize("callers_threads", [1, 3])
def test_predictions_in_lanes_are_those_made_in_turn_bit_for_bit(mnist, monkeypatch, three_threads, callers_threads):
    monkeypatch.setenv("MNIST_LANES", "2")
    torch.set_num_threads(callers_threads)  # 1: as a notebook whose trainings run in lanes computes
    seed_everything(0)
    model, threads_seen = models.Model_3(), set()
    model.register_forward_hook(lambda *_: threads_seen.add(threading.current_thread().name))
    batches = Batches(mnist.test.head(1000), 64)  # 16 batches, the last one short
    tested = predict_views(model, batches, torch.device("cpu"), ONE_PIXEL_SHIFTS)
    if callers_threads == 1:
        assert {name.split("-")[0] for name in threads_seen} == {"lane"} and len(threads_seen) == 2
    else:
        assert threads_seen == {"MainThread"}, "more threads than a lane's one: in turn, on the caller's threads"
    monkeypatch.setattr("mnist_utils.evaluation.lanes_to_evaluate", lambda device, batches: None)
    in_turn = predict_views(model, batches, torch.device("cpu"), ONE_PIXEL_SHIFTS)
    assert torch.equal(tested[0].labels, mnist.test.labels[:1000])
    for a, b in zip(tested, in_turn):
        assert torch.equal(a.labels, b.labels) and torch.equal(a.probabilities, b.probabilities)


def test_a_lane_waiting_for_the_share_of_the_cores_ends_with_the_last_job(monkeypatch):
    monkeypatch.setattr("mnist_utils.lanes.lanes_shared", lambda lanes: 1)  # beside another notebook, on 2 cores
    monkeypatch.setattr("mnist_utils.lanes.SHARE_POLL_SECONDS", 60)  # a lane that slept its poll would take a minute
    results = []
    jobs = (lambda i=i: time.sleep(0.1) or i for i in range(3))  # a job long enough for the other lane to wait
    caller = threading.Thread(target=lambda: results.append(run_in_lanes(jobs, lanes=2)), daemon=True)
    caller.start()
    caller.join(timeout=20)
    assert results == [[0, 1, 2]], "the lane waiting for the share did not wake when the jobs ran out"
