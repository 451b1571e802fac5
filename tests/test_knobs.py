"""The bench's knobs (mnist_utils/knobs.py): each changes one thing, is timed as it says, and a knob that cannot
run here is reported. No assertion is about speed."""
import itertools
import threading

import torch

from mnist_utils import knobs
from mnist_utils.batches import endless
from mnist_utils.knobs import Knob, Sizes
from mnist_utils.recipes import load_config

TINY = Sizes(steps=1, warmup=1, repeats=1)

STEP3 = load_config("step3")


def test_verdict_needs_the_margin_to_say_helps():
    assert knobs.verdict(1.05) == "helps"
    assert knobs.verdict(1.04) == "does not help (within ±5%)"
    assert knobs.verdict(0.95) == "does not help (slower)"
    assert knobs.verdict(1.2, margin=0.25) == "does not help (within ±25%)"


def test_knobs_start_with_the_baseline_and_change_one_thing_each():
    every = knobs.knobs_for(STEP3, lanes=2)
    assert every[0] == Knob(every[0].name)
    changed = [{f for f in ("batch_size", "channels_last", "compile", "autocast", "copies", "lanes")
                if getattr(k, f) != getattr(every[0], f)} for k in every[1:]]
    assert all(len(fields) == 1 for fields in changed)
    assert {k.batch_size for k in every} == {None, STEP3.batch_size // 2, STEP3.batch_size * 2}


def test_full_batches_drop_an_epochs_short_last_batch(mnist):
    batches = STEP3.train_batches(mnist.train.head(300), torch.device("cpu"), 1)
    batch = STEP3.batch_size  # 300 is no multiple of it: every epoch ends on a short batch
    sizes = [len(y) for _, y in itertools.islice(knobs.full_batches(endless(batches), batch), 5)]
    assert sizes == [batch] * 5


def test_packed_knob_counts_every_copys_images(mnist, monkeypatch):
    seen = []
    original = knobs.take_steps
    monkeypatch.setattr(knobs, "take_steps", lambda *a, **k: seen.append(original(*a, **k)) or seen[-1])
    result = knobs.knob_speed(Knob("packed", copies=2), STEP3, mnist.train.head(512), torch.device("cpu"), TINY)
    assert result["images_per_s"] > 0 and result["compile_s"] is None
    assert seen == [2 * STEP3.batch_size] * 2, "warm-up and timed step: a batch for each of 2 copies"


def test_lanes_knob_counts_every_lanes_images_over_the_slowest_lanes_time(mnist, monkeypatch):
    calls, lock = [], threading.Lock()
    lane_timings = [[(100, 1.0), (100, 0.5)], [(100, 2.0), (100, 0.5)]]  # (images, seconds) of each repeat

    def fake_repeats(*args, **kwargs):
        with lock:
            calls.append((torch.get_num_threads(), kwargs.get("together") or args[-1]))
            return lane_timings[len(calls) - 1]

    monkeypatch.setattr(knobs, "timed_repeats", fake_repeats)
    result = knobs.knob_speed(Knob("lanes", lanes=2), STEP3, mnist.train.head(512), torch.device("cpu"), TINY)
    assert result == {"images_per_s": 400.0, "compile_s": None}, "repeat 2: 200 images in 0.5 s beats 200 in 2 s"
    assert [threads for threads, _ in calls] == [1, 1], "each lane trains on one thread"
    assert calls[0][1] is calls[1][1], "both lanes start their repeats at one barrier"


def test_lanes_knob_only_where_there_are_two_lanes_or_more():
    assert not any(k.lanes > 1 for k in knobs.knobs_for(STEP3))
    assert not any(k.lanes > 1 for k in knobs.knobs_for(STEP3, 1))
    assert [k.lanes for k in knobs.knobs_for(STEP3, 4)][-1] == 4


def test_a_knob_that_fails_is_reported_not_raised(mnist, monkeypatch, capsys):
    def fake_speed(knob, *args):
        if knob.compile:
            raise RuntimeError("no C++ compiler found\nmore detail")
        return {"images_per_s": 200.0 if knob.copies > 1 else 100.0, "compile_s": None}

    monkeypatch.setattr(knobs, "knob_speed", fake_speed)
    rows = knobs.knob_table(STEP3, mnist.train.head(256), torch.device("cpu"), TINY)
    by_name = {row["knob"]: row for row in rows}
    assert by_name["torch.compile"]["error"] == "RuntimeError: no C++ compiler found"
    assert by_name["torch.compile"]["ratio"] is None
    packed = next(row for row in rows if "packed" in row["knob"])
    assert packed["ratio"] == 2.0 and packed["verdict"] == "helps"
    assert "failed: RuntimeError: no C++ compiler found" in capsys.readouterr().out


def test_lanes_knob_builds_every_lanes_model_before_the_lanes_start(mnist, monkeypatch):
    # Seeding is global: a model built inside a lane would draw from a generator another lane is seeding.
    builders, original = [], knobs.seeded_models
    monkeypatch.setattr(knobs, "seeded_models", lambda copies: builders.append(threading.current_thread()) or
                        original(copies))
    monkeypatch.setattr(knobs, "timed_repeats", lambda **kwargs: [(100, 1.0)])
    knobs.knob_speed(Knob("lanes", lanes=2), STEP3, mnist.train.head(512), torch.device("cpu"), TINY)
    assert builders == [threading.main_thread()] * 2


def test_a_baseline_that_fails_says_why(mnist, monkeypatch, capsys):
    def fake_speed(knob, *args):
        if knob == Knob(knob.name):
            raise RuntimeError("out of memory")
        return {"images_per_s": 100.0, "compile_s": None}

    monkeypatch.setattr(knobs, "knob_speed", fake_speed)
    rows = knobs.knob_table(STEP3, mnist.train.head(256), torch.device("cpu"), TINY)
    assert rows[0]["verdict"] == "failed: RuntimeError: out of memory"
    assert {row["verdict"] for row in rows[1:]} == {"no baseline to compare with"}
    assert "failed: RuntimeError: out of memory" in capsys.readouterr().out
