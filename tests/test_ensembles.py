"""Choosing an ensemble on held-out predictions (notebook 06): temperatures, greedy members, the best single
candidate, and the same choice made on half the images and scored on the other half."""
import math

import pytest
import torch

from mnist_utils.evaluation import Predictions, ensemble


def soft(labels, rows):
    """Predictions from explicit softmax rows (each a list of 10)."""
    probabilities = torch.tensor(rows, dtype=torch.float)
    return Predictions(torch.tensor(labels), probabilities.argmax(dim=1), probabilities)


def test_log_loss_is_the_mean_negative_log_probability_of_the_true_digit():
    from mnist_utils.evaluation import log_loss
    rows = [[0.9] + [0.1 / 9] * 9, [0.4 / 9] * 9 + [0.6]]
    assert log_loss(soft([0, 9], rows)) == pytest.approx(-(math.log(0.9) + math.log(0.6)) / 2)
    assert log_loss(soft([1, 9], rows)) == pytest.approx(-(math.log(0.1 / 9) + math.log(0.6)) / 2), "wrong: its p"


def test_ensemble_selection_starts_from_the_best_adds_what_lowers_the_loss_and_skips_what_does_not():
    from mnist_utils.evaluation import log_loss
    from mnist_utils.ensembles import choose_members

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


def test_ensemble_selection_runs_twice_as_many_rounds_as_models_by_default_and_stops_at_a_tie():
    from mnist_utils.ensembles import choose_members

    def row(top, p):  # probability p on class `top`, the rest spread evenly
        return [p if c == top else (1 - p) / 9 for c in range(10)]

    # a: sure and right on three images, wrong on the fourth; b: barely right on those three, sure on the fourth.
    # The best mix weighs a several times over b, so the selection would go on past 4 rounds.
    labels = [0, 1, 2, 3]
    a = soft(labels, [row(0, 0.9), row(1, 0.9), row(2, 0.9), row(5, 0.5)])
    b = soft(labels, [row(0, 0.05), row(1, 0.05), row(2, 0.05), row(3, 0.99)])
    unlimited = choose_members({"a": a, "b": b}, rounds=20)
    assert len(unlimited) > 4, "the example needs a selection that the default cuts short"
    assert choose_members({"a": a, "b": b}) == unlimited[:4], "2 models: 4 rounds"
    # One model: adding it again leaves the loss as it was, a tie, which is no improvement: one round only.
    assert [r["ensemble"] for r in choose_members({"a": a})] == ["a"]


def test_temperature_scaling_finds_the_overconfidence_it_undoes_and_keeps_the_answers():
    from mnist_utils.evaluation import log_loss
    from mnist_utils.ensembles import fit_temperature, with_temperature

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
    from mnist_utils.ensembles import choose_members, choose_on, fit_temperature, with_temperature

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


def test_the_best_single_candidate_of_a_tie_in_accuracy_is_the_first_given():
    from mnist_utils.ensembles import choose_on

    def row(top, p):
        return [p if c == top else (1 - p) / 9 for c in range(10)]

    # Each right on 3 of 4 images, on different ones, and unsure where the other is sure: equal accuracy.
    labels = [0, 1, 2, 3]
    x = soft(labels, [row(0, 0.9), row(1, 0.9), row(2, 0.9), row(5, 0.5)])
    y = soft(labels, [row(5, 0.6), row(1, 0.5), row(2, 0.5), row(3, 0.5)])
    assert x.accuracy == y.accuracy == 75.0
    assert choose_on({"x": x, "y": y}).best == "x" and choose_on({"y": y, "x": x}).best == "y"


def test_random_halves_split_every_image_into_two_disjoint_halves_both_ways_round():
    from mnist_utils.ensembles import random_halves

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


def test_of_an_odd_count_the_second_half_of_each_halving_holds_the_extra_image_and_each_fold_counts_what_it_scores():
    from mnist_utils.ensembles import choice_on_halves, random_halves

    folds = random_halves(81, halvings=2, seed=0)
    assert [(len(choose), len(score)) for _, choose, score in folds] == [(40, 41), (41, 40)] * 2

    def row(top, p):
        return [p if c == top else (1 - p) / 9 for c in range(10)]

    labels = [i % 10 for i in range(81)]
    left = soft(labels, [row(y, 0.95) if i % 4 else row((y + 1) % 10, 0.4) for i, y in enumerate(labels)])
    right = soft(labels, [row(y, 0.95) if i % 4 != 1 else row((y + 1) % 10, 0.4) for i, y in enumerate(labels)])
    rows = choice_on_halves({"left": left, "right": right}, halvings=2, seed=0)
    assert [r["images"] for r in rows] == [len(score) for _, _, score in folds] == [41, 40, 41, 40]


def test_choices_scored_on_the_other_half_count_what_the_ensemble_gains_over_the_best_single():
    from mnist_utils.ensembles import choice_on_halves

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
    from mnist_utils.ensembles import halves_summary

    rows = [{"images": 200, "ensemble right": 190 + gain, "single right": 190, "gain": gain} for gain in (3, 0, -1, 2)]
    rows[0] |= {"ensemble right": 200, "single right": 197}
    assert halves_summary(rows) == {"folds": 4, "images scored per fold": 200, "ensemble right": 192.75,
                                    "single right": 191.75, "ensemble ahead": 2, "tied": 1,
                                    "ensemble behind": 1, "mean gain (images)": 1.0, "lowest": -1, "highest": 3,
                                    "mean gain (points)": 0.5}
    odd = halves_summary([{"images": 3, "ensemble right": 3, "single right": 2, "gain": 1},
                          {"images": 2, "ensemble right": 2, "single right": 2, "gain": 0}])  # 5 images: 3 and 2
    assert odd["images scored per fold"] == 2 and odd["mean gain (points)"] == 20.0, "1 image gained of 5 scored"


def test_each_fold_chooses_on_one_half_only_and_scores_on_the_other():
    from mnist_utils.evaluation import ensemble
    from mnist_utils.ensembles import _subset, choice_on_halves, choose_on, random_halves, with_temperature

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
        right = int(combined.correct.sum()), int(_subset(pool[choice.best], score).correct.sum())  # the other scores
        assert (row["best single"], row["ensemble"], row["ensemble right"], row["single right"], row["gain"]) == \
            (choice.best, " + ".join(choice.members), *right, right[0] - right[1])
    assert len({(r["best single"], r["gain"]) for r in rows}) > 1, "the folds differ, so the comparison can fail"


def test_the_temperature_search_finds_the_grids_lowest_loss():
    from mnist_utils.ensembles import fit_temperature

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
    from mnist_utils.evaluation import Predictions
    from mnist_utils.ensembles import wrong_by_all, wrong_by_any
    labels = torch.tensor([0, 1, 2, 3])

    def answering(predicted):
        predicted = torch.tensor(predicted)
        return Predictions(labels, predicted, torch.nn.functional.one_hot(predicted, 10).float())

    a, b = answering([0, 9, 9, 3]), answering([0, 1, 9, 9])
    assert wrong_by_any([a, b]).tolist() == [1, 2, 3] and wrong_by_all([a, b]).tolist() == [2]
