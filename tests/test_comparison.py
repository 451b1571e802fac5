"""Notebook 06's models (exact sizes, output shapes) and the helpers that compare models."""
import pytest
import torch
import torch.nn as nn

import models
from mnist_utils import inspection, precision
from mnist_utils.batches import Batches, ShortEpochs
from mnist_utils.data import ImageSet
from mnist_utils.engine import fit
from mnist_utils.ensembles import most_shared, shared_errors, wrong_by_all
from mnist_utils.evaluation import Predictions, confused_pairs, ensemble, head_to_head, mcnemar, top_confusions
from mnist_utils.inspection import (bf16_choices_fit, bf16_claim, channels_last_claim, count_parameters,
                                    precision_speeds, speed_probe, speed_table, training_speed)
from mnist_utils.leaderboard import label_places, plot_leaderboard, plotted_error, write_leaderboard
from mnist_utils.optim import make_optimizer, make_scheduler
from mnist_utils.plots import plot_hard_images, plot_shared_errors
from mnist_utils.recipes import Recipe
from mnist_utils.results import leaderboard_rows

PARAMETERS = {"SimpleCNN": 421_642, "DeeperCNN": 870_634, "MiniVGG": 2_920_778, "TwoBranchCNN": 26_222_158}


@pytest.mark.parametrize("name", PARAMETERS)
def test_parameter_count_is_the_documented_one(name):
    model = getattr(models, name)()
    assert count_parameters(model) == PARAMETERS[name]
    assert f"{PARAMETERS[name]:,} parameters" in model.__doc__, "the docstring states the exact count"


@pytest.mark.parametrize("name", PARAMETERS)
def test_logits_for_a_batch_in_either_memory_layout(name):
    torch.manual_seed(0)
    model = getattr(models, name)().eval()
    x = torch.randn(3, 1, 28, 28)
    logits = model(x)
    assert logits.shape == (3, 10)
    fast = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(logits, fast, atol=1e-4), "channels_last changes speed, not results"


def test_minivgg_trains_at_the_widths_its_config_names():
    from mnist_utils.recipes import build_model, load_config

    recipe = load_config("cnn_minivgg")
    model = build_model(recipe)
    widths = [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]
    c1, c2, c3 = recipe.model_args["widths"]
    assert widths == [c1, c1, c2, c2, c3, c3, c3] and model.classifier[1].in_features == c3 * 3 * 3
    assert count_parameters(model) < count_parameters(models.MiniVGG()), "narrower than the class's default"
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


# ---------------------------------------------------------------------------- ShortEpochs


@pytest.fixture
def numbered():
    """10 images whose labels name their index."""
    return ImageSet(torch.zeros(10, 28, 28, dtype=torch.uint8), torch.arange(10))


def test_short_epochs_cut_one_endless_stream(numbered):
    epochs = ShortEpochs(Batches(numbered, 2, shuffle=True, seed=3), batches_per_epoch=3)
    seen = [torch.cat([y for _, y in epochs]) for _ in range(5)]  # 5 epochs × 6 images = 3 passes
    assert len(epochs) == 3 and all(len(s) == 6 for s in seen)
    stream = torch.cat(seen)
    passes = [stream[i:i + 10] for i in range(0, 30, 10)]
    assert all(sorted(p.tolist()) == list(range(10)) for p in passes), "each pass uses every image once"
    assert not torch.equal(passes[0], passes[1]), "each pass is shuffled anew"
    again = ShortEpochs(Batches(numbered, 2, shuffle=True, seed=3), batches_per_epoch=3)
    assert torch.equal(torch.cat([torch.cat([y for _, y in again]) for _ in range(5)]), stream), "seeded"


def test_short_epochs_drive_fit_and_refuse_empty_epochs(mnist):
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    train = ShortEpochs(Batches(mnist.train.head(256), 32, shuffle=True), batches_per_epoch=3)
    optimizer = make_optimizer("adam", model.parameters(), lr=1e-3)
    scheduler = make_scheduler("onecycle", optimizer, epochs=4, steps_per_epoch=len(train))
    history = fit(model, train, None, optimizer, torch.device("cpu"), epochs=4, scheduler=scheduler,
                        val_batches=Batches(mnist.test.head(64), 64),
                        patience=10, keep_best=True, progress=None)
    assert len(history) == 4 and scheduler.last_epoch == 12
    with pytest.raises(ValueError, match="batches_per_epoch"):
        ShortEpochs(train.batches, 0)


# ---------------------------------------------------------------------------- training_speed


def test_training_speed_leaves_model_and_random_state_alone():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Dropout(0.5), nn.Linear(4 * 26 * 26, 10))
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = torch.get_rng_state()
    for layout, dtype in ((False, None), (True, None), (True, torch.bfloat16)):  # bf16: through precision.Autocast
        assert training_speed(model, x, y, torch.device("cpu"), steps=1, repeats=2, channels_last=layout,
                              autocast_dtype=dtype) > 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(torch.get_rng_state(), state)
    for bad in ({"steps": 0}, {"repeats": 0}, {"warmup": -1}):
        with pytest.raises(ValueError, match="need steps"):
            training_speed(model, x, y, torch.device("cpu"), **bad)


def test_training_speed_is_the_best_of_its_timed_repeats(monkeypatch):
    # 3 repeats of 2 steps on 8 images, timed 0.5 s, 0.25 s and 1 s: the best is 16 images in 0.25 s.
    clock = iter([0.0, 0.5, 1.0, 1.25, 2.0, 3.0])
    steps = []
    monkeypatch.setattr(inspection, "training_step", lambda model, x, y, optimizer: steps.append(len(y)))
    monkeypatch.setattr(inspection.time, "perf_counter", lambda: next(clock))
    model = nn.Linear(4, 2)
    speed = training_speed(model, torch.randn(8, 4), torch.randint(0, 2, (8,)), torch.device("cpu"),
                           steps=2, repeats=3, warmup=1)
    assert speed == 64.0
    assert steps == [8] * 7, "one warm-up step, then 3 repeats of 2 steps"


def speed_row(model: str, rounds: list[float], on: bool, trains_in: str = "bfloat16") -> dict:
    """A `precision_speeds` row whose bf16 ran `rounds` times as fast as channels_last alone, round by round."""
    return {"model": model, "bf16 over channels_last": max(rounds), "bf16 over channels_last, each round": rounds,
            "bf16 in its config": on, "trains in": trains_in if on else "float32"}


def test_a_bf16_choice_fits_unless_every_round_of_the_probe_says_otherwise_by_the_5_percent_margin():
    fast, marginal = speed_row("A", [1.5, 1.3], on=True), speed_row("B", [1.04, 0.98], on=False)
    assert bf16_choices_fit([fast, marginal], native_bf16=True) == (
        True, "A 1.500× (rounds 1.500, 1.300; on), B 1.040× (rounds 1.040, 0.980; off)")
    assert bf16_choices_fit([speed_row("C", [1.05, 0.9], on=True)], native_bf16=True)[0]  # 5% in a round is enough
    # just under the margin in every round: refused, and the evidence shows why instead of rounding up to it
    assert bf16_choices_fit([speed_row("D", [1.046, 1.0], on=True)], native_bf16=True) == (
        False, "D 1.046× (rounds 1.046, 1.000; on)")
    assert not bf16_choices_fit([speed_row("A", [1.5, 1.05], on=False)], native_bf16=True)[0]  # faster each time, off
    assert bf16_choices_fit([speed_row("A", [1.5, 1.04], on=False)], native_bf16=True)[0]  # one round says not: noise
    assert not bf16_choices_fit([fast, speed_row("B", [1.04, 0.98], on=True)], native_bf16=True)[0]  # one misfit
    # Without native bf16 the configs' wishes do not matter: whether everything trains in float32 does.
    assert bf16_choices_fit([speed_row("A", [0.5], on=True, trains_in="float32")], native_bf16=False)[0]
    assert not bf16_choices_fit([speed_row("A", [0.5], on=True)], native_bf16=False)[0]


def test_channels_last_pays_where_it_is_5_percent_faster_in_every_round_somewhere_and_that_much_slower_nowhere():
    def rows(*rounds):
        return [{"model": name, "channels_last speed-up": max(ratios), "channels_last speed-up, each round": ratios}
                for name, ratios in zip("ABC", rounds)]

    claim, met, evidence = channels_last_claim(rows([1.37, 1.30], [1.04, 1.0], [0.98, 0.97]))
    assert met and evidence == "A 1.37× (rounds 1.37, 1.30), B 1.04× (rounds 1.04, 1.00), C 0.98× (rounds 0.98, 0.97)"
    assert "at least 5% faster in every round" in claim
    assert channels_last_claim(rows([1.05, 1.06], [1.0]))[1]  # exactly 5% faster is enough
    assert not channels_last_claim(rows([1.04, 1.01], [0.99]))[1]  # no speed-up beyond a timing's noise
    assert not channels_last_claim(rows([1.37, 0.99], [1.01]))[1]  # faster in one round only: noise
    assert not channels_last_claim(rows([1.37], [0.95, 0.90]))[1]  # a clear speed-up, but one model slower each time
    assert channels_last_claim(rows([1.37], [0.96, 0.92]))[1]  # 4% slower in a round: within the noise
    assert channels_last_claim(rows([1.37], [0.93, 1.02]))[1]  # slower in one round, not in the other: noise


def test_bf16_claim_asks_the_device_whether_it_has_native_bf16(monkeypatch):
    on_but_slow = [speed_row("A", [1.01], on=True, trains_in="float32")]
    for native, holds in ((True, False), (False, True)):  # no native bf16: everything in float32 is what fits
        monkeypatch.setattr(inspection, "bf16_native", lambda device: native)
        claim, met, evidence = bf16_claim(on_but_slow, torch.device("cpu"))
        assert claim.startswith("Each config's bf16 choice fits") and "under 5% faster" in claim
        assert "every round" in claim
        assert (met, evidence) == (holds, "A 1.010× (rounds 1.010; on)")


def test_speed_probe_times_the_first_batch_of_the_first_recipe_or_a_tiny_one_when_quick(monkeypatch):
    seen = []
    monkeypatch.setattr(inspection, "precision_speeds",
                        lambda models, recipes, x, y, device, repeats: seen.append((x.shape, y.tolist(), repeats)))
    train = ImageSet(torch.arange(10, dtype=torch.uint8).view(10, 1, 1).expand(10, 28, 28).contiguous(),
                     torch.arange(10))
    recipes = {"first": Recipe(model="Model_1", batch_size=6), "second": Recipe(model="Model_1", batch_size=8)}
    speed_probe({}, recipes, train, torch.device("cpu"))
    speed_probe({}, recipes, train, torch.device("cpu"), quick=True)
    assert seen == [((6, 1, 28, 28), [0, 1, 2, 3, 4, 5], 3), ((4, 1, 28, 28), [0, 1, 2, 3], 1)]


def test_precision_speeds_times_the_three_ways_in_turn_on_one_thread_and_keeps_each_ways_best_round(monkeypatch):
    # other work on the machine slows whatever is timed meanwhile: in turn, round after round, it falls on all three
    calls, speeds = [], iter([100.0, 80.0, 300.0, 120.0, 160.0, 200.0])  # round 1: fp32, cl, bf16; round 2: ...
    def timed(model, images, labels, device, channels_last=False, autocast_dtype=None):
        calls.append((channels_last, autocast_dtype, torch.get_num_threads()))
        return next(speeds)
    monkeypatch.setattr(inspection, "training_speed", timed)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)  # the caller's: each way is timed on one thread, as a lane trains, then theirs again
        row, = precision_speeds({"m": nn.Linear(1, 1)}, {"m": Recipe(model="Model_1")}, torch.zeros(1),
                                torch.zeros(1), torch.device("cpu"), repeats=2)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert calls == [(False, None, 1), (True, None, 1), (True, torch.bfloat16, 1)] * 2
    assert (row["float32"], row["channels_last"], row["bf16 + channels_last"]) == (120.0, 160.0, 300.0)
    assert row["channels_last speed-up, each round"] == [0.8, 160.0 / 120.0]  # each round's pair, in its order
    assert row["bf16 over channels_last, each round"] == [300.0 / 80.0, 200.0 / 160.0]


def test_precision_speeds_on_a_gpu_leaves_the_callers_cpu_threads_alone(monkeypatch):
    # one thread is how a lane trains on a CPU; on a GPU the CPU only feeds it, with the caller's threads
    seen = []
    monkeypatch.setattr(inspection, "training_speed",
                        lambda *args, **kwargs: seen.append(torch.get_num_threads()) or 1.0)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        precision_speeds({"m": nn.Linear(1, 1)}, {"m": Recipe(model="Model_1")}, torch.zeros(1), torch.zeros(1),
                         torch.device("cuda"), repeats=1)
    finally:
        torch.set_num_threads(before)
    assert seen == [2, 2, 2]


@pytest.mark.parametrize("native", [True, False], ids=["bf16 processor", "no bf16"])
def test_precision_speeds_measures_each_model_three_ways_and_says_what_its_recipe_trains_in(monkeypatch, native):
    monkeypatch.setattr(precision, "bf16_native", lambda device: native)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))
    nets = {"asks": net, "does not": net}
    recipes = {"asks": Recipe(model="Model_1", bf16=True), "does not": Recipe(model="Model_1", bf16=False)}
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    rows = precision_speeds(nets, recipes, x, y, torch.device("cpu"), repeats=1)
    assert [row["model"] for row in rows] == ["asks", "does not"]
    for row in rows:
        assert min(row["float32"], row["channels_last"], row["bf16 + channels_last"]) > 0
        assert row["bf16 speed-up"] == pytest.approx(row["bf16 + channels_last"] / row["float32"])
        assert row["bf16 over channels_last"] == pytest.approx(row["bf16 + channels_last"] / row["channels_last"])
    assert [(row["bf16 in its config"], row["trains in"]) for row in rows] == [
        (True, "bfloat16" if native else "float32"), (False, "float32")]
    shown = speed_table(rows)
    assert shown[0]["float32 (images/s)"] == round(rows[0]["float32"]) and shown[0]["bf16 speed-up"].endswith("×")
    assert shown[0]["bf16 over channels_last"] == f"{rows[0]['bf16 over channels_last']:.3f}×"
    assert shown[0]["each round (the rule's ratios)"] == f"{rows[0]['bf16 over channels_last, each round'][0]:.3f}"


def test_speed_table_shows_each_measure_in_its_own_column():
    # Three different speeds, so that a column showing another's figure cannot pass for its own.
    row = {"model": "A", "float32": 100.4, "channels_last": 150.6, "bf16 + channels_last": 301.2,
           "channels_last speed-up": 1.5, "bf16 speed-up": 3.0, "bf16 over channels_last": 2.0,
           "bf16 over channels_last, each round": [2.0, 1.25], "bf16 in its config": True, "trains in": "bfloat16"}
    assert speed_table([row]) == [{"model": "A", "float32 (images/s)": 100, "channels_last (images/s)": 151,
                                   "bf16 + channels_last (images/s)": 301, "channels_last speed-up": "1.50×",
                                   "bf16 speed-up": "3.00×", "bf16 over channels_last": "2.000×",
                                   "each round (the rule's ratios)": "2.000, 1.250",
                                   "bf16 in its config": True, "trains in": "bfloat16"}]


# ---------------------------------------------------------------------------- comparing predictions


def predictions(labels, predicted) -> Predictions:
    """Predictions with one-hot probabilities."""
    labels, predicted = torch.tensor(labels), torch.tensor(predicted)
    return Predictions(labels, predicted, nn.functional.one_hot(predicted, 10).float())


def test_ensemble_averages_probabilities():
    a = Predictions(torch.tensor([0, 1]), torch.tensor([0, 2]), torch.tensor([[0.6, 0.4] + [0] * 8, [0, 0.3, 0.7] + [0] * 7]))
    b = Predictions(torch.tensor([0, 1]), torch.tensor([1, 1]), torch.tensor([[0.4, 0.6] + [0] * 8, [0, 0.9, 0.1] + [0] * 7]))
    both = ensemble([a, b])
    assert torch.allclose(both.probabilities[1, :3], torch.tensor([0.0, 0.6, 0.4]))
    assert both.predicted.tolist() == [0, 1] and both.accuracy == 100.0, "together they fix each other's mistake"
    with pytest.raises(ValueError, match="same images"):
        ensemble([a, predictions([1, 1], [1, 1])])
    with pytest.raises(ValueError, match="at least one"):
        ensemble([])


def test_shared_errors_and_images_every_model_gets_wrong():
    labels = [0, 1, 2, 3, 4]
    a, b, c = predictions(labels, [9, 9, 2, 3, 4]), predictions(labels, [9, 1, 9, 3, 4]), predictions(labels, [9, 9, 9, 3, 4])
    assert shared_errors([a, b, c]).tolist() == [[2, 1, 2], [1, 2, 2], [2, 2, 3]]
    assert wrong_by_all([a, b, c]).tolist() == [0]
    assert wrong_by_all([a, predictions(labels, labels)]).tolist() == []
    # a: both its errors are c's too; b: one of its two is a's, both are c's; c: two of its three are a's (and b's)
    assert most_shared(shared_errors([a, b, c])) == [1.0, 1.0, 2 / 3]
    assert most_shared(shared_errors([a, b, predictions(labels, labels)])) == [0.5, 0.5, 0.0], "no errors: 0"
    counts = torch.tensor([[5.0, 3.0], [3.0, 4.0]], dtype=torch.float64)
    assert most_shared(counts) == [0.6, 0.75] and counts[0, 0] == 5.0, "the counts given are left as they were"
    with pytest.raises(ValueError, match="at least 2"):
        most_shared(shared_errors([a]))


def test_mcnemar_counts_disagreements_and_gives_the_exact_p_value():
    labels = list(range(8))
    a = predictions(labels, labels)  # all right
    b = predictions(labels, [9] * 6 + [6, 7])  # wrong on six that a gets right
    result = mcnemar(a, b)
    assert (result["only_a"], result["only_b"]) == (6, 0)
    assert result["p_value"] == pytest.approx(2 / 2**6)  # both one-sided extremes of Binomial(6, 1/2)
    assert mcnemar(a, a)["p_value"] == 1.0
    assert mcnemar(b, a)["p_value"] == result["p_value"]


def test_confused_pairs_add_both_directions():
    confusion = torch.zeros(10, 10, dtype=torch.long)
    confusion[4, 9], confusion[9, 4], confusion[7, 2], confusion[3, 3] = 3, 2, 4, 50
    assert confused_pairs(confusion, k=5) == [(4, 9, 5), (2, 7, 4)]


def test_top_confusions_give_exactly_the_k_most_frequent_mistakes():
    confusion = torch.zeros(10, 10, dtype=torch.long)
    confusion[4, 9], confusion[7, 2], confusion[3, 5], confusion[1, 1] = 5, 4, 3, 50
    assert top_confusions(confusion, k=2) == [(4, 9, 5), (7, 2, 4)]
    assert top_confusions(confusion, k=3) == [(4, 9, 5), (7, 2, 4), (3, 5, 3)]
    assert confused_pairs(confusion, k=1) == [(4, 9, 5)]


# ---------------------------------------------------------------------------- plots and the leaderboard


def test_hard_images_plot_handles_none_and_some():
    labels = [0, 1, 2]
    preds = {"a": predictions(labels, [9, 1, 2]), "b": predictions(labels, [8, 1, 2])}
    images = torch.zeros(3, 28, 28, dtype=torch.uint8)
    figure = plot_hard_images(images, wrong_by_all(list(preds.values())), preds)
    assert figure.axes[0].get_title() == "0 → 9 8", "each model's answer apart: '98' would read as a number"
    (empty,) = plot_hard_images(images, torch.tensor([], dtype=torch.long), preds).axes
    assert [text.get_text() for text in empty.texts] == ["no image is misclassified by every model"]
    capped = plot_hard_images(torch.zeros(40, 28, 28, dtype=torch.uint8), torch.arange(40),
                                    {"a": predictions([0] * 40, [1] * 40)}, n=16)
    assert "16 of 40 images" in capped.texts[0].get_text()


def test_shared_errors_plot_names_the_images_it_counts():
    labels = [0, 1, 2]
    counts = shared_errors([predictions(labels, [9, 1, 2]), predictions(labels, [8, 1, 0])])
    assert plot_shared_errors(counts, ["a", "b"]).axes[0].get_title().startswith("test images both models get wrong")
    on_validation = plot_shared_errors(counts, ["a", "b"], images="validation").axes[0]
    assert on_validation.get_title().startswith("validation images both models get wrong")
    assert [text.get_text() for text in on_validation.texts] == ["1", "1", "1", "2"], "each pair's count, annotated"


def test_write_leaderboard_writes_plot_and_page(tmp_path):
    rows = leaderboard_rows([
        {"notebook": "06_cnn_comparison", "models": [{"name": "MiniVGG", "params": 2_920_778, "test_acc": 99.61, "seconds": 412.0,
                                                      "train_images": 55_000,
                                                      "checkpoint": "models/cnn_minivgg-seed6.safetensors"}]},
        {"notebook": "01_step1", "models": [{"name": "Model_<1>", "params": 7_412, "test_acc": 99.1, "seconds": 80.5}]},
    ])
    png, page = write_leaderboard(rows, plot_leaderboard(rows, highlight="06_cnn_comparison"), tmp_path,
                                        note="full profile")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = page.read_text()
    assert text.index("MiniVGG") < text.index("Model_&lt;1&gt;"), "best first, names escaped"
    assert "2,920,778" in text and "99.61%" in text and 'src="leaderboard.png"' in text
    assert '<a href="models/cnn_minivgg-seed6.safetensors">cnn_minivgg-seed6</a>' in text, "each model links its checkpoint"
    assert "<td>55,000</td>" in text and "learned from" in text, "how many digits each model learned from, and why"
    assert text.count("<td>—</td>") == 2, "a model saved without a checkpoint, or its training images, says so"
    assert not list(tmp_path.glob(".*.part")), "written atomically, no leftovers"
    empty_png, empty_page = write_leaderboard([], plot_leaderboard([]), tmp_path / "empty")
    assert empty_png.exists() and "No results yet" in empty_page.read_text()


def test_the_leaderboard_ranks_from_1_and_rings_only_the_highlighted_notebooks_models(tmp_path):
    from matplotlib.colors import to_rgba

    rows = leaderboard_rows([
        {"notebook": "06_cnn_comparison", "models": [{"name": "MiniVGG", "params": 2_920_778, "test_acc": 99.61,
                                                      "seconds": 412.0}]},
        {"notebook": "01_step1", "models": [{"name": "Model_1", "params": 7_412, "test_acc": 99.1, "seconds": 80.5}]},
    ])
    figure = plot_leaderboard(rows, highlight="06_cnn_comparison")
    _, page = write_leaderboard(rows, figure, tmp_path)
    text = page.read_text()
    assert "<tr><td>1</td><td>MiniVGG</td>" in text and "<tr><td>2</td><td>Model_1</td>" in text, "the best is 1st"
    edges = {points.get_label(): tuple(points.get_edgecolor()[0]) for points in figure.axes[0].collections}
    assert edges == {"06_cnn_comparison": to_rgba("black"), "01_step1": to_rgba("white")}
    # each point numbered with its rank in the table, at its test error (names would overlap near 100%)
    ax = figure.axes[0]
    assert [(t.get_text(), t.xy) for t in ax.texts] == [("1", (2_920_778, pytest.approx(0.39))),
                                                        ("2", (7_412, pytest.approx(0.9)))]
    assert ax.get_yscale() == "log" and ax.yaxis_inverted(), "the fewest errors at the top"
    perfect = leaderboard_rows([{"notebook": "01_step1", "models": [{"name": "smoke", "params": 100, "test_acc": 100.0,
                                                                    "seconds": 1.0}]}])
    assert plot_leaderboard(perfect).axes[0].texts[0].xy == (100, 0.01), "a perfect score at the floor, not dropped"


def test_leaderboard_numbers_of_points_close_together_do_not_overlap():
    places = label_places([(100.0, 100.0), (100.0, 101.0), (300.0, 300.0)], ["9", "12", "1"])
    assert places[0] != places[1], "two points at one place: their numbers on different sides"
    assert places[2] == places[0], "a point alone gets the first place"
    # the 04 models: four points within 1,000 parameters and 0.4 points of error
    models = [("VGG + BN + aug", 33_882, 99.04), ("VGG", 33_850, 98.91), ("VGG + BN", 33_882, 98.88),
              ("ResNet + BN + aug", 33_298, 98.67), ("MiniVGG", 409_562, 99.73), ("MiniVGG (TTA)", 409_562, 99.72)]
    rows = leaderboard_rows([{"notebook": "04", "models": [{"name": n, "params": p, "test_acc": a, "seconds": 1.0}
                                                           for n, p, a in models]}])
    ax = plot_leaderboard(rows).axes[0]
    ax.figure.canvas.draw()
    boxes = [text.get_window_extent() for text in ax.texts]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    # both ends of the error axis carry a tick label, the best models' end among them
    low, high = sorted(ax.get_ylim())
    assert low < 0.27 and high > 1.33
    labelled = {tick.get_position()[1] for tick in ax.get_yticklabels() if tick.get_text()}
    assert low in labelled and high in labelled


def test_the_leaderboard_takes_any_error_a_run_can_give():
    # a smoke run's models: from a perfect score (drawn at the floor) to one wrong on nine images of ten
    for accuracies in ([100.0, 9.5], [12.0], [99.99, 99.98], [50.0, 0.0]):
        rows = leaderboard_rows([{"notebook": "01", "models": [{"name": f"m{i}", "params": 10 + i, "test_acc": a,
                                                                 "seconds": 1.0} for i, a in enumerate(accuracies)]}])
        low, high = sorted(plot_leaderboard(rows).axes[0].get_ylim())
        assert low <= min(map(plotted_error, rows)) and high >= max(map(plotted_error, rows))


def test_head_to_head_compares_b_with_a():
    labels = list(range(8))
    a = predictions(labels, [9, 9, 9] + labels[3:])  # 5 of 8 right
    b = predictions(labels, [9] + labels[1:])  # 7 of 8 right: two more than a, none fewer
    result = head_to_head({"A": a, "B": b}, "A", "B", seconds={"A": 10.0, "B": 25.0})
    assert (result["accuracy_a"], result["accuracy_b"], result["points"]) == (62.5, 87.5, 25.0)
    assert (result["only_a"], result["only_b"]) == (0, 2)
    assert result["p_value"] == mcnemar(b, a)["p_value"] == 0.5
    assert result["time_ratio"] == 2.5
    assert result["text"] == "B 87.50% vs A 62.50% (+25.00 points, McNemar p = 0.5) for 2.5× the training time"
    untimed = head_to_head({"A": a, "B": b}, "B", "A")
    assert untimed["time_ratio"] is None and untimed["text"].endswith("McNemar p = 0.5)")
    assert (untimed["only_a"], untimed["only_b"], untimed["points"]) == (2, 0, -25.0)


def test_show_configs_shows_a_shared_base_once(monkeypatch):
    from mnist_utils import recipes, report

    shown = []
    monkeypatch.setattr(report, "show_markdown", shown.append)
    variants = [recipes.load_config(name) for name in ("cnn_simple", "cnn_deeper", "cnn_twobranch")]
    report.show_configs(variants)
    text = shown[0]
    assert text.count("`configs/cnn_simple.yaml`") == 1, "the shared base once"
    assert text.index("cnn_simple.yaml") < text.index("cnn_deeper.yaml") < text.index("cnn_twobranch.yaml")
    assert all(f"- `{r.name}`: {r.describe()}" in text for r in variants), "each recipe as run"
