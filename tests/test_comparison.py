"""Notebook 06's models (exact sizes, output shapes) and the helpers that compare models."""
import pytest
import torch
import torch.nn as nn

import models
from mnist_utils import engine
from mnist_utils.batches import Batches, ShortEpochs
from mnist_utils.data import ImageSet
from mnist_utils.engine import fit, make_optimizer, make_scheduler
from mnist_utils.evaluation import (Predictions, confused_pairs, ensemble, head_to_head, mcnemar, shared_errors,
                                    wrong_by_all)
from mnist_utils import inspection
from mnist_utils.inspection import (bf16_choices_fit, bf16_claim, channels_last_claim, count_parameters,
                                    precision_speeds, speed_probe, speed_table, training_speed)
from mnist_utils.leaderboard import plot_leaderboard, write_leaderboard
from mnist_utils.plots import plot_hard_images
from mnist_utils.recipes import Recipe
from mnist_utils.report import leaderboard_rows

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
    for layout, dtype in ((False, None), (True, None), (True, torch.bfloat16)):  # bf16: through engine.Autocast
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


def speed_row(model: str, channels_last: float, bf16: float, on: bool, trains_in: str = "bfloat16") -> dict:
    return {"model": model, "channels_last": channels_last, "bf16 + channels_last": bf16,
            "bf16 over channels_last": bf16 / channels_last, "bf16 in its config": on,
            "trains in": trains_in if on else "float32"}


def test_bf16_choices_fit_the_speed_against_channels_last_in_float32_with_a_5_percent_margin():
    fast, marginal = speed_row("A", 100, 150, on=True), speed_row("B", 100, 104, on=False)
    assert bf16_choices_fit([fast, marginal], native_bf16=True) == (True, "A 1.500× (on), B 1.040× (off)")
    assert bf16_choices_fit([speed_row("C", 100, 105, on=True)], native_bf16=True)[0]  # exactly 5% is enough
    # just under the margin: refused, and the evidence shows why instead of rounding up to the margin
    assert bf16_choices_fit([speed_row("D", 100, 104.6, on=True)], native_bf16=True) == (False, "D 1.046× (on)")
    assert not bf16_choices_fit([speed_row("A", 100, 150, on=False)], native_bf16=True)[0]  # faster, yet off
    assert not bf16_choices_fit([speed_row("B", 100, 104, on=True)], native_bf16=True)[0]  # on, but under 5%
    # Without native bf16 the configs' wishes do not matter: whether everything trains in float32 does.
    assert bf16_choices_fit([speed_row("A", 100, 50, on=True, trains_in="float32")], native_bf16=False)[0]
    assert not bf16_choices_fit([speed_row("A", 100, 50, on=True)], native_bf16=False)[0]


def test_channels_last_pays_where_it_is_5_percent_faster_somewhere_and_that_much_slower_nowhere():
    def rows(*gains):
        return [{"model": name, "channels_last speed-up": gain} for name, gain in zip("ABC", gains)]

    claim, met, evidence = channels_last_claim(rows(1.37, 1.04, 0.98))
    assert met and evidence == "A 1.37×, B 1.04×, C 0.98×" and "at least 5% faster" in claim
    assert channels_last_claim(rows(1.05, 1.0))[1]  # exactly 5% faster is enough
    assert not channels_last_claim(rows(1.04, 1.01, 0.99))[1]  # no speed-up beyond a timing's noise
    assert not channels_last_claim(rows(1.37, 0.95))[1]  # a clear speed-up, but one model clearly slower
    assert channels_last_claim(rows(1.37, 0.96))[1]  # 4% slower is within the noise


def test_bf16_claim_asks_the_device_whether_it_has_native_bf16(monkeypatch):
    on_but_slow = [speed_row("A", 100, 101, on=True, trains_in="float32")]
    for native, holds in ((True, False), (False, True)):  # no native bf16: everything in float32 is what fits
        monkeypatch.setattr(inspection, "bf16_native", lambda device: native)
        claim, met, evidence = bf16_claim(on_but_slow, torch.device("cpu"))
        assert claim.startswith("Each config's bf16 choice fits") and "≥ 5% faster" in claim
        assert (met, evidence) == (holds, "A 1.010× (on)")


def test_speed_probe_times_the_first_batch_of_the_first_recipe_or_a_tiny_one_when_quick(monkeypatch):
    seen = []
    monkeypatch.setattr(inspection, "precision_speeds",
                        lambda models, recipes, x, y, device, repeats: seen.append((x.shape, y.tolist(), repeats)))
    train = ImageSet(torch.arange(10, dtype=torch.uint8).view(10, 1, 1).expand(10, 28, 28).contiguous(),
                     torch.arange(10))
    recipes = {"first": Recipe(model="Model_1", batch_size=6), "second": Recipe(model="Model_1", batch_size=8)}
    speed_probe({}, recipes, train, torch.device("cpu"))
    speed_probe({}, recipes, train, torch.device("cpu"), quick=True)
    assert seen == [((6, 1, 28, 28), [0, 1, 2, 3, 4, 5], 2), ((4, 1, 28, 28), [0, 1, 2, 3], 1)]


@pytest.mark.parametrize("native", [True, False], ids=["bf16 processor", "no bf16"])
def test_precision_speeds_measures_each_model_three_ways_and_says_what_its_recipe_trains_in(monkeypatch, native):
    monkeypatch.setattr(engine, "bf16_native", lambda device: native)
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
    assert shown[0]["bf16 over channels_last (the rule's ratio)"] == f"{rows[0]['bf16 over channels_last']:.3f}×"


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


# ---------------------------------------------------------------------------- plots and the leaderboard


def test_hard_images_plot_handles_none_and_some():
    labels = [0, 1, 2]
    preds = {"a": predictions(labels, [9, 1, 2]), "b": predictions(labels, [8, 1, 2])}
    images = torch.zeros(3, 28, 28, dtype=torch.uint8)
    figure = plot_hard_images(images, wrong_by_all(list(preds.values())), preds)
    assert figure.axes[0].get_title() == "0 → 98"
    assert plot_hard_images(images, torch.tensor([], dtype=torch.long), preds).axes
    capped = plot_hard_images(torch.zeros(40, 28, 28, dtype=torch.uint8), torch.arange(40),
                                    {"a": predictions([0] * 40, [1] * 40)}, n=16)
    assert "16 of 40 images" in capped.texts[0].get_text()


def test_write_leaderboard_writes_plot_and_page(tmp_path):
    rows = leaderboard_rows([
        {"notebook": "06_cnn_comparison", "models": [{"name": "MiniVGG", "params": 2_920_778, "test_acc": 99.61, "seconds": 412.0,
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
    assert text.count("<td>—</td>") == 1, "a model saved without a checkpoint says so"
    assert not list(tmp_path.glob(".*.part")), "written atomically, no leftovers"
    empty_png, empty_page = write_leaderboard([], plot_leaderboard([]), tmp_path / "empty")
    assert empty_png.exists() and "No results yet" in empty_page.read_text()


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


def soft(labels, rows):
    """Predictions from explicit softmax rows (each a list of 10)."""
    probabilities = torch.tensor(rows, dtype=torch.float)
    return Predictions(torch.tensor(labels), probabilities.argmax(dim=1), probabilities)


def test_ensemble_selection_starts_from_the_best_adds_what_lowers_the_loss_and_skips_what_does_not():
    from mnist_utils.evaluation import choose_members, log_loss

    def row(top, p):  # probability p on class `top`, the rest spread evenly
        return [p if c == top else (1 - p) / 9 for c in range(10)]

    labels = [0, 1, 2, 3]
    good = soft(labels, [row(0, 0.9), row(1, 0.9), row(2, 0.9), row(5, 0.5)])       # one confident error
    partner = soft(labels, [row(0, 0.6), row(1, 0.6), row(9, 0.4), row(3, 0.95)])   # fixes it, errs elsewhere
    poor = soft(labels, [row(4, 0.9), row(4, 0.9), row(4, 0.9), row(4, 0.9)])       # always wrong
    chosen = choose_members({"poor": poor, "partner": partner, "good": good})
    added = [r["added"] for r in chosen]
    assert added[0] == min(("good", "partner"), key=lambda n: log_loss({"good": good, "partner": partner}[n]))
    assert "poor" not in added and set(added) == {"good", "partner"}
    losses = [r["log-loss"] for r in chosen]
    assert losses == sorted(losses, reverse=True) and len(set(losses)) == len(losses), "every round lowers the loss"
    mixed = ensemble([{"good": good, "partner": partner}[n] for n in added])
    assert chosen[-1]["accuracy"] == mixed.accuracy and chosen[-1]["log-loss"] == pytest.approx(log_loss(mixed))
    assert [r["ensemble"] for r in chosen] == [" + ".join(added[:i]) for i in range(1, len(added) + 1)]
    assert len(choose_members({"poor": poor, "partner": partner, "good": good}, rounds=1)) == 1


def test_temperature_scaling_finds_the_overconfidence_it_undoes_and_keeps_the_answers():
    from mnist_utils.evaluation import fit_temperature, log_loss, with_temperature

    generator = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(20_000, 10, generator=generator)
    labels = torch.multinomial(torch.softmax(logits, dim=1), 1, generator=generator).flatten()  # calibrated
    sure = torch.softmax(2 * logits, dim=1)  # twice as sharp as the truth: temperature 2 undoes it
    overconfident = Predictions(labels, sure.argmax(dim=1), sure)
    temperature = fit_temperature(overconfident)
    assert temperature == pytest.approx(2.0, rel=0.05)
    calibrated = with_temperature(overconfident, temperature)
    assert torch.equal(calibrated.predicted, overconfident.predicted)
    assert torch.allclose(calibrated.probabilities.sum(dim=1), torch.ones(len(labels)))
    assert log_loss(calibrated) < log_loss(overconfident)
    assert torch.allclose(with_temperature(overconfident, 1.0).probabilities, sure, atol=1e-6)
    modest = with_temperature(overconfident, 4.0)  # as flat as a label-smoothed model's: sharpened back
    assert fit_temperature(modest) == pytest.approx(0.5, rel=0.05)


def test_the_choice_is_the_temperatures_the_greedy_members_and_the_most_accurate_single():
    from mnist_utils.evaluation import choose_members, choose_on, fit_temperature, with_temperature

    generator = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 10, (400,), generator=generator)
    candidates = {}
    for name, noise in (("sharp", 1.0), ("blurred", 3.0), ("worst", 6.0)):
        logits = 4 * torch.nn.functional.one_hot(labels, 10).float() + noise * torch.randn(400, 10, generator=generator)
        probabilities = torch.softmax(logits, dim=1)
        candidates[name] = Predictions(labels, probabilities.argmax(dim=1), probabilities)
    choice = choose_on(candidates)
    assert choice.temperature == {name: fit_temperature(p) for name, p in candidates.items()}
    calibrated = {name: with_temperature(p, choice.temperature[name]) for name, p in candidates.items()}
    assert choice.selection == choose_members(calibrated)
    assert choice.members == [row["added"] for row in choice.selection]
    assert choice.best == "sharp" == max(candidates, key=lambda name: candidates[name].accuracy)
    combined = choice.combine(candidates)  # the chosen members, each as calibrated
    assert torch.equal(combined.probabilities, ensemble([calibrated[name] for name in choice.members]).probabilities)
    assert torch.equal(choice.combine(candidates, members=["worst"]).probabilities, calibrated["worst"].probabilities)


def test_random_halves_split_every_image_into_two_disjoint_halves_both_ways_round():
    from mnist_utils.evaluation import random_halves

    folds = random_halves(11, halvings=3, seed=0)
    assert [halving for halving, _, _ in folds] == [1, 1, 2, 2, 3, 3]
    for halving, choose, score in folds:
        assert sorted(torch.cat([choose, score]).tolist()) == list(range(11)), "disjoint, and every image in one"
        assert (len(choose), len(score)) in {(5, 6), (6, 5)}
    assert all(torch.equal(a[1], b[2]) and torch.equal(a[2], b[1]) for a, b in zip(folds[::2], folds[1::2]))
    assert not torch.equal(folds[0][1], folds[2][1]), "each halving draws anew"
    assert all(torch.equal(a[1], b[1]) for a, b in zip(folds, random_halves(11, halvings=3, seed=0))), "seeded"
    for count, halvings in ((1, 1), (10, 0)):
        with pytest.raises(ValueError, match="at least 2 images and 1 halving"):
            random_halves(count, halvings=halvings, seed=0)


def test_choices_scored_on_the_other_half_count_what_the_ensemble_gains_over_the_best_single():
    from mnist_utils.evaluation import choice_on_halves

    def row(top, p):
        return [p if c == top else (1 - p) / 9 for c in range(10)]

    # Two partners, each wrong (unsure) where the other is right (sure): averaged, every image is right,
    # while the better single model misses a quarter of them.
    labels = [i % 10 for i in range(80)]
    left = soft(labels, [row(y, 0.95) if i % 4 else row((y + 1) % 10, 0.4) for i, y in enumerate(labels)])
    right = soft(labels, [row(y, 0.95) if i % 4 != 1 else row((y + 1) % 10, 0.4) for i, y in enumerate(labels)])
    pool = {"left": left, "right": right}
    rows = choice_on_halves(pool, halvings=3, seed=0)
    assert [r["halving"] for r in rows] == [1, 1, 2, 2, 3, 3] and all(r["images"] == 40 for r in rows)
    for r in rows:
        assert set(r["ensemble"].split(" + ")) == {"left", "right"}
        assert r["gain"] > 0, "the pair fixes the single model's mistakes and breaks nothing"
    # One model alone: the ensemble is that model, so it gains nothing on any fold.
    assert [r["gain"] for r in choice_on_halves({"left": left}, halvings=2, seed=1)] == [0, 0, 0, 0]


def test_the_halves_summary_counts_folds_each_way_and_averages_the_gain():
    from mnist_utils.evaluation import halves_summary

    rows = [{"images": 200, "gain": gain} for gain in (3, 0, -1, 2)]
    assert halves_summary(rows) == {"folds": 4, "images scored per fold": 200, "ensemble ahead": 2, "tied": 1,
                                    "ensemble behind": 1, "mean gain (images)": 1.0, "lowest": -1, "highest": 3,
                                    "mean gain (points)": 0.5}
    odd = halves_summary([{"images": 3, "gain": 1}, {"images": 2, "gain": 0}])  # 5 images: folds of 3 and 2
    assert odd["images scored per fold"] == 2 and odd["mean gain (points)"] == 20.0, "1 image gained of 5 scored"


def test_each_fold_chooses_on_one_half_only_and_scores_on_the_other():
    from mnist_utils.evaluation import _subset, choice_on_halves, choose_on, ensemble, random_halves, with_temperature

    generator = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 10, (300,), generator=generator)
    pool = {}
    for name, noise in (("a", 2.0), ("b", 2.5), ("c", 3.0)):  # near-ties, so which half chooses matters
        logits = 2 * torch.nn.functional.one_hot(labels, 10).float() + noise * torch.randn(300, 10, generator=generator)
        probabilities = torch.softmax(logits, dim=1)
        pool[name] = Predictions(labels, probabilities.argmax(dim=1), probabilities)
    rows = choice_on_halves(pool, halvings=4, seed=5)
    for row, (_, choose, score) in zip(rows, random_halves(300, halvings=4, seed=5), strict=True):
        choice = choose_on({name: _subset(p, choose) for name, p in pool.items()})  # by hand: this half chooses
        combined = ensemble([with_temperature(_subset(pool[m], score), choice.temperature[m]) for m in choice.members])
        gain = int(combined.correct.sum() - _subset(pool[choice.best], score).correct.sum())  # the other scores
        assert (row["best single"], row["ensemble"], row["gain"]) == (choice.best, " + ".join(choice.members), gain)
    assert len({(r["best single"], r["gain"]) for r in rows}) > 1, "the folds differ, so the comparison can fail"


def test_the_temperature_search_finds_the_grids_lowest_loss():
    from mnist_utils.evaluation import fit_temperature

    generator = torch.Generator().manual_seed(2)
    grid = torch.logspace(-1, 1, 461, dtype=torch.float64)
    found = []
    for sharpness in (0.0, 0.05, 0.3, 1.0, 2.5, 8.0, None):  # flat, below the grid, inside it, beyond it
        logits = 3 * torch.randn(3_000, 10, generator=generator)
        labels = (torch.randint(0, 10, (3_000,), generator=generator) if sharpness is None  # unrelated: flattest wins
                  else torch.multinomial(torch.softmax(logits, dim=1), 1, generator=generator).flatten())
        probabilities = torch.softmax((1.0 if sharpness is None else sharpness) * logits, dim=1)
        log_p = probabilities.double().clamp_min(1e-12).log()
        scan = torch.stack([-torch.log_softmax(log_p / t, dim=1).gather(1, labels[:, None]).mean() for t in grid])
        p = Predictions(labels, probabilities.argmax(dim=1), probabilities)
        assert fit_temperature(p) == grid[scan.argmin()].item(), "the point a scan of every loss on the grid finds"
        found.append(scan.argmin().item())
    assert found[0] == found[1] == 0 and found[-1] == len(grid) - 1 and len(set(found)) == len(found) - 1


def test_wrong_by_any_and_by_all_name_the_images_some_and_every_model_gets_wrong():
    from mnist_utils.evaluation import Predictions, wrong_by_all, wrong_by_any
    labels = torch.tensor([0, 1, 2, 3])

    def answering(predicted):
        predicted = torch.tensor(predicted)
        return Predictions(labels, predicted, torch.nn.functional.one_hot(predicted, 10).float())

    a, b = answering([0, 9, 9, 3]), answering([0, 1, 9, 9])
    assert wrong_by_any([a, b]).tolist() == [1, 2, 3] and wrong_by_all([a, b]).tolist() == [2]
