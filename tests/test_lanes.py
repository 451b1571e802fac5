"""Lanes: independent trainings at once, one thread each, with the numbers of each trained alone."""
import threading
import time

import pytest
import torch

import models
from mnist_utils import training
from mnist_utils.augment import Augment
from mnist_utils.data import MNIST
from mnist_utils.engine import seed_everything
from mnist_utils.lanes import draws_global_randomness, lanes_for, run_in_lanes
from mnist_utils.recipes import Recipe
from mnist_utils.training import seed_packs, train_recipe, train_seeds

RECIPE = Recipe(model="Model_3", epochs=1, batch_size=128, lr=0.1, scheduler="onecycle",
                augment=Augment(rotation=7, translate=0.08))


def small(mnist, train=512, test=256):
    return MNIST(mnist.train.head(train), mnist.test.head(test))


def test_jobs_run_at_once_on_one_thread_each_and_come_back_in_order():
    started, seen = threading.Barrier(2, timeout=10), []

    def job(i):
        started.wait()  # both jobs must be running for either to pass: they really run at once
        seen.append((i, torch.get_num_threads(), threading.current_thread().name))
        return i * 10

    before = torch.get_num_threads()
    assert run_in_lanes([lambda i=i: job(i) for i in range(2)], lanes=2) == [0, 10]
    assert {threads for _, threads, _ in seen} == {1}
    assert len({name for _, _, name in seen}) == 2
    assert torch.get_num_threads() == before, "the caller's thread count is restored"


def test_one_lane_runs_the_jobs_in_turn_on_the_callers_threads():
    order = []
    assert run_in_lanes([lambda: order.append(1) or torch.get_num_threads(), lambda: order.append(2)], lanes=1)[0] \
        == torch.get_num_threads()
    assert order == [1, 2]
    with pytest.raises(ValueError, match="at least 1"):
        run_in_lanes([], lanes=0)


def test_a_failing_job_raises_after_the_others_end():
    finished = []

    def slow():
        time.sleep(0.2)
        finished.append("slow")

    def broken():
        raise RuntimeError("job failed")

    before = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="job failed"):
        run_in_lanes([broken, slow], lanes=2)
    assert finished == ["slow"] and torch.get_num_threads() == before


def test_models_with_dropout_and_gpus_get_one_lane(monkeypatch):
    monkeypatch.setattr("mnist_utils.lanes.usable_cpus", lambda: 4)
    assert draws_global_randomness(models.Model_2()) and not draws_global_randomness(models.Model_3())
    assert not draws_global_randomness(models.Model_2(dropout=0.0))
    assert lanes_for([models.Model_3(), models.Model_3()], torch.device("cpu")) == 4
    assert lanes_for([models.Model_3(), models.Model_2()], torch.device("cpu")) == 1
    assert lanes_for([models.Model_3()], torch.device("cuda")) == 1


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


def test_seeds_give_the_same_numbers_on_a_one_core_machine_and_on_two_lanes(mnist, monkeypatch):
    data, seeds = small(mnist), [1, 2, 3, 4]
    runs, previous = {}, torch.get_num_threads()
    for lanes in (1, 2):
        monkeypatch.setattr(training, "lanes_for", lambda models, device, lanes=lanes: lanes)
        torch.set_num_threads(1 if lanes == 1 else previous)  # one core: one lane, and torch on one thread
        try:
            runs[lanes] = train_seeds(RECIPE, data, torch.device("cpu"), seeds=seeds, progress=False)
        finally:
            torch.set_num_threads(previous)
    for (one, one_history), (two, two_history) in zip(runs[1], runs[2]):
        assert one_history["test_acc"] == two_history["test_acc"]
        assert one_history["train_loss"] == two_history["train_loss"]
        for (name, value), expected in zip(one.state_dict().items(), two.state_dict().values()):
            assert torch.equal(value, expected), name
    # each history's seconds add up to the wall time of the whole run, shared by every seed
    assert len({round(history.seconds, 6) for _, history in runs[2]}) == 1


def test_recipes_run_at_once_give_what_run_recipe_gives_on_one_thread(mnist, monkeypatch):
    data = small(mnist)
    recipes = {"plain": RECIPE.replace(seeds=(3,)), "no augmentation": RECIPE.replace(augment=Augment(), seeds=(4,))}
    monkeypatch.setattr(training, "lanes_for", lambda models, device: 2)
    runs = training.run_recipes(recipes, data, torch.device("cpu"), progress=False)
    assert list(runs) == list(recipes)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name, recipe in recipes.items():
            model, history = training.run_recipe(recipe, data, torch.device("cpu"), progress=None)
            assert runs[name][1]["test_acc"] == history["test_acc"], name
            assert all(torch.equal(a, b) for a, b in zip(runs[name][0].state_dict().values(), model.state_dict().values()))
    finally:
        torch.set_num_threads(previous)
