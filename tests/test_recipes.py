"""Recipes: every config loads and builds; bad keys, types and names are clear errors; what a recipe builds and
runs (config files themselves: test_config_files.py)."""
import math
import re

import pytest
import torch

import models
from mnist_utils.augment import Augment
from mnist_utils.config import get_profile
from mnist_utils.config_files import config_files, config_names
from mnist_utils.data import ImageSet
from mnist_utils.engine import History
from mnist_utils.evaluation import clean_epochs_effect, run_summary
from mnist_utils.optim import ONE_CYCLE_MOMENTUM
from mnist_utils.recipes import PRETRAINED, ConfigError, Recipe, build_model, build_pretrained, load_config, model_names


@pytest.mark.parametrize("name", config_names())
def test_every_config_loads_and_builds_its_model(name):
    recipe = load_config(name)
    assert recipe.name == name and recipe.title, "every config says what it is"
    if recipe.model == PRETRAINED:  # a random-initialised backbone: no weights file needed to check the shape
        model = build_pretrained(recipe, pretrained=False).model
    else:
        model = build_model(recipe)
    size = recipe.image_size or 28
    assert model.eval()(torch.zeros(2, 1, size, size)).shape == (2, 10)
    optimizer = recipe.make_optimizer(model.parameters())
    group = optimizer.param_groups[0]
    assert type(optimizer).__name__.lower() == recipe.optimizer and group["lr"] == recipe.lr
    assert group["weight_decay"] == recipe.weight_decay, "the config's weight decay reaches the optimizer"
    assert group.get("nesterov", False) == (recipe.optimizer == "sgd" and recipe.momentum > 0)
    assert f"{recipe.epochs} epoch" in recipe.describe()


@pytest.mark.parametrize("name", ["step2", "cnn_minivgg"])  # dropout of its own generator; BatchNorm
def test_building_a_model_tries_a_blank_batch_and_leaves_no_trace(name):
    recipe = load_config(name)
    torch.manual_seed(3)
    built, after_built = build_model(recipe), torch.get_rng_state()
    torch.manual_seed(3)
    plain, after_plain = getattr(models, recipe.model)(**recipe.model_args), torch.get_rng_state()
    assert built.training and torch.equal(after_built, after_plain), "in training mode, nothing more drawn"
    for (key, a), b in zip(built.state_dict().items(), plain.state_dict().values()):
        assert torch.equal(a, b), f"{key}: weights, BatchNorm statistics and counts as built"
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(built(x), plain(x)), "dropout's own generator not drawn from either"


def test_a_config_builds_on_its_base_and_changes_only_what_it_says():
    base, variant = load_config("blocks_vgg_bn"), load_config("blocks_vgg_bn_aug")
    assert [path.name for path, _ in config_files("blocks_vgg_bn_aug")] == [
        "blocks_vgg.yaml", "blocks_vgg_bn.yaml", "blocks_vgg_bn_aug.yaml"]
    assert variant.augment == Augment(rotation=10, translate=0.1) and not base.augment.enabled
    assert variant.replace(augment=base.augment, title=base.title, name=base.name) == base
    resnet = load_config("blocks_resnet_bn_aug")
    assert resnet.model == "OneBlockResNet" and resnet.model_args == {"batchnorm": True}
    no_shortcut = load_config("blocks_resnet_no_shortcut")  # notebook 04's ablation: the shortcut, nothing else
    assert no_shortcut.model_args == {"batchnorm": True, "shortcut": False}
    assert no_shortcut.replace(model_args=resnet.model_args, title=resnet.title, name=resnet.name) == resnet


def test_fractions_read_as_written():
    assert load_config("cnn_simple").val_fraction == pytest.approx(1 / 12)
    assert load_config("finetune_full").train_fraction == pytest.approx(1 / 20)
    assert load_config("step3", ["val_fraction=1 / 12"]).val_fraction == pytest.approx(1 / 12), "spaced as in prose"


def test_scientific_notation_reads_as_a_number_where_a_number_is_expected():
    assert load_config("step3", ["lr=1e-3", "weight_decay=5E-4"]).lr == pytest.approx(1e-3)
    assert load_config("step3", ["weight_decay=5E-4"]).weight_decay == pytest.approx(5e-4)
    assert load_config("step3", ["lr=.5e-1"]).lr == pytest.approx(0.05)
    assert load_config("step3", ["lr=' 1e-3 '"]).lr == pytest.approx(1e-3), "quoted with spaces: still a number"
    with pytest.raises(ConfigError, match=r"epochs: expected int, got '1e3'"):
        load_config("step3", ["epochs=1e3"])  # a whole number is written as one


def test_overrides_change_keys_and_nested_keys():
    recipe = load_config("step3", ["epochs=5", "anneal_epochs=5", "augment.rotation=5", "model_args.dropout=0.1", "seeds=[7]"])
    assert (recipe.epochs, recipe.augment.rotation, recipe.augment.translate) == (5, 5.0, 0.08)
    assert recipe.seeds == (7,) and recipe.model_args == {**load_config("step3").model_args, "dropout": 0.1}, \
        "a nested key joins the file's other model_args"


@pytest.mark.parametrize("overrides, message", [
    (["epoch=3"], r"step3: unknown key epoch; did you mean epochs\?$"),
    (["lrr=0.05"], r"step3: unknown key lrr; did you mean lr\?$"),
    (["learning_rate=0.05"], r"unknown key learning_rate; did you mean lr\?$"),
    (["dropout=0.3"], r"unknown key dropout; did you mean model_args\.dropout\?$"),  # a synonym before a spelling
    (["Dropout=0.3"], r"unknown key Dropout; did you mean model_args\.dropout\?$"),  # whatever the case
    (["lrr=0.05", "zzz=1"], r"unknown keys lrr \(did you mean lr\?\), zzz; the keys are name, title, model"),
    (["augment.shift=0.7"], r"step3: augment: unknown key shift; did you mean translate\?$"),
    (["augment.rotate=5"], r"augment: unknown key rotate; did you mean rotation\?$"),
    (["lr=[0.05"], r"--set 'lr=\[0.05': the value is not valid YAML: expected ',' or '\]'"),
    (["epochs=three"], r"epochs: expected int, got 'three'"),
    (["epochs=2.5"], r"epochs: expected int"),
    (["model=Model_9"], r"model: unknown 'Model_9'; choose one of Model_1, Model_2"),
    (["model=minivgg"], r"model: unknown 'minivgg'; choose one of .*'pretrained'; did you mean MiniVGG for minivgg\?$"),
    (["optimizer=rmsprop"], r"optimizer: unknown 'rmsprop'; choose one of sgd, adam, adamw"),
    (["scheduler=cosine"], r"scheduler: unknown 'cosine'; choose one of onecycle"),
    (["augment.spin=3"], r"augment: unknown key spin; the keys are rotation, translate"),
    (["patience=3"], r"patience, keep_best and a plateau schedule watch the validation split: set val_fraction"),
    (["clean_epochs=15"], r"clean_epochs: must be between 0 and epochs - 1 = 14"),
    (["batch_size=0"], r"batch_size: must be at least 1"),
    (["epochs=0"], r"step3: epochs: must be at least 1, got 0$"),  # alone: not again as anneal_epochs' or clean_epochs'
    (["batches_per_epoch=0"], r"batches_per_epoch: must be at least 1 \(or left out: whole passes\), got 0"),
    (["train_fraction=0.9", "val_fraction=0.2"], r"add up to more than the whole training set: lower one"),
    (["threads=0"], r"threads: from 1 to 1,024 \(or left out: one per core\), got 0$"),
    (["threads=1099511627776"], r"threads: from 1 to 1,024 .*, got 1099511627776$"),  # torch's overflow, a traceback
    (["image_size=200000"], r"image_size: pixels per side, from 1 to 1,024 \(the digits have 28\), got 200000$"),
    # 0 stopped at the first epoch it watched, however it improved
    (["val_fraction=0.1", "patience=0"], r"patience: epochs without improvement before stopping, at least 1 "),
    (["weight_decay=.inf"], r"weight_decay at least 0 and finite, got 0.9 and inf$"),  # diverged, 'lower the lr'
    (["augment.erase_p=1", "augment.erase_ratio=[1, .inf]"], r"erase_ratio: .* above 0 and finite, got \[1.0, inf\]$"),
    # a checkpoint keeps model_args as JSON: a set was written as its text, found only when it would not load
    (["model_args.widths=!!set {8, 10}"], r"model_args: numbers, text, .*, got \{(8, 10|10, 8)\}$"),
    (["model=pretrained", "model_args={num_classes: 5}"],
     r"model_args: a pretrained backbone takes family and pretrained, not num_classes$"),
    (["model=pretrained", "model_args={famly: resnet18}"], r"not famly; did you mean family for famly\?$"),
    (["epochs=" + "[" * 3000 + "]" * 3000], r"not valid YAML: nested too deep to read"),  # a RecursionError's traceback
    (["label_smoothing=1"], r"label_smoothing: must be in \[0, 1\), got 1"),
    (["ema=1"], r"ema: a decay per step in \(0, 1\), 0.995 averaging about the last 200 steps, got 1.0$"),
    (["ema=0"], r"ema: a decay per step in \(0, 1\), .*, got 0.0$"),
    (["train_probe=-1"], r"train_probe: a number of training images, 0 for none, got -1"),
    (["split_seed=3"], r"split_seed draws the validation split: set val_fraction too, or leave split_seed out"),
    (["epochs"], r"write key=value"),
    (["=3"], r"--set '=3': write key=value"),
    (["lr=0"], r"lr: must be above 0 and finite, got 0.0"),
    (["lr=1e400"], r"lr: must be above 0 and finite, got inf"),
    (["momentum=1"], r"momentum must be in \[0, 1\) and weight_decay at least 0 and finite, got 1.0"),
    (["weight_decay=-1e-4"], r"weight_decay at least 0 and finite, got 0.9 and -0.0001"),
    (["pct_start=0"], r"pct_start must be in \(0, 1\)"),
    (["augment.rotation=-5"], r"augment.rotation: degrees in \[0, 180\]"),
    (["augment.scale=[0,1]"], r"augment.scale: \[smallest, largest\] zoom, 0 < smallest"),
    (["augment.erase_p=2"], r"augment.erase_p: a probability in \[0, 1\], got 2.0"),
    (["lr.peak=1"], r"--set 'lr.peak=1': lr is not a group of keys"),
    (["epochs=5"], r"anneal_epochs: the cycle must fit the run, 1 to epochs = 5, got 15 \(changing epochs\? set"),
    (["augment=5"], r"step3: augment: expected keys such as rotation, translate; got 5"),
    # each unknown key has a likely meaning: the guesses say enough, no list of every key
    (["lrr=0.05", "epoch=3"], r"unknown keys epoch \(did you mean epochs\?\), lrr \(did you mean lr\?\)$"),
    # YAML's context at the very spot of its problem says nothing more; an error without a spot, in one line
    (["lr=]"], r"not valid YAML: expected the node content, but found '\]'$"),
    (["lr=\x07"], r"not valid YAML: unacceptable character #x0007: special characters are not allowed in "
                  r"\"<unicode string>\", position 0$"),
    # a value is its field's type, never coerced to it: true is no number, nor null a batch size
    (["lr=true"], r"step3: lr: expected float, got True \(bool\)$"),
    (["epochs=true"], r"step3: epochs: expected int, got True \(bool\)$"),
    (["batch_size=null"], r"step3: batch_size: expected int, got None \(NoneType\)$"),
    (["seeds=[1, 2.5]"], r"step3: seeds: expected int, got 2.5 \(float\)$"),
    (["seeds=[1, -1]"], r"seeds: a seed is a whole number from 0 to 2\*\*64 - 1, got -1$"),
    (["seeds=[]"], r"seeds: give at least one seed$"),
    (["seeds=[6]", "split_seed=18446744073709551616"], r"split_seed: a seed is a whole number from 0 to 2\*\*64 - 1"),
    (["lr=1/x"], r"step3: lr: expected float, got '1/x' \(str\)$"),
    (["lr=1/0"], r"step3: lr: expected float, got '1/0' \(str\)$"),  # not a ZeroDivisionError's traceback
    # a value its explicit tag cannot make raised PyYAML's own ValueError or KeyError, a traceback
    (["epochs=!!int x"], r"--set 'epochs=!!int x': the value is not valid YAML: a value its tag cannot make "
                         r"\(ValueError: invalid literal for int\(\) with base 10: 'x'\)$"),
    # a name is the stem of the model's files and run folder: a folder in it would put them outside models/ and runs/
    *((["name=" + name], r"step3: name: .* give a file name, without folders or a leading dot$")
      for name in ("../../x", "sub/x", "a\\b", "..", ".hidden", "''")),
])
def test_a_bad_config_names_the_key_and_the_choices(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config("step3", overrides)


def test_a_batch_of_one_image_a_backbone_cannot_normalise_is_refused_before_a_run():
    # a backbone's last features are 1×1 up to 32 pixels: one image left nothing to normalise, a traceback part-way
    with pytest.raises(ConfigError, match=r"^finetune_full: 3,000 training images in batches of 2999 make a batch of "
                                          r"1 image, which a backbone's BatchNorm cannot normalise on 28×28 digits "
                                          r"\(its last features are 1×1\): choose another batch_size, set drop_last: "
                                          r"true, or an image_size above 32$"):
        load_config("finetune_full", ["image_size=28", "batch_size=2999"]).check_data(60_000)
    with pytest.raises(ConfigError, match=r"in batches of 1 make a batch of 1 image"):
        load_config("finetune_full", ["image_size=32", "batch_size=1"]).check_data(60_000)
    for fits in (["image_size=33", "batch_size=2999"], ["image_size=28", "batch_size=2999", "drop_last=true"],
                 ["image_size=28", "batch_size=2999", "freeze_backbone=true"]):  # a head alone: no BatchNorm trains
        load_config("finetune_full", fits).check_data(60_000)
    load_config("step3", ["batch_size=59999"]).check_data(60_000)  # the models of models.py normalise one image


def test_a_recipe_says_the_share_of_the_training_images_it_trains_on_and_holds_out():
    """As `split` makes them: 05's fine-tunes train on 3,000 digits of 60,000, 06's models on all but 1/12."""
    assert load_config("finetune_head").describe().startswith(
        "30 epochs on 5% of the training images (1.67% held out for validation), batches of 64")
    assert "10 short epochs on 91.7% of the training images (8.33% held out for validation)," in load_config(
        "cnn_simple").describe()
    assert load_config("step3").describe().startswith("15 epochs, batches of 128"), "every image: nothing to say"
    assert Recipe(train_fraction=0.5).describe().startswith("15 epochs on 50% of the training images, batches")
    images = ImageSet(torch.zeros(1200, 28, 28, dtype=torch.uint8), torch.zeros(1200, dtype=torch.long))
    trained, held_out = load_config("cnn_simple").split(images, seed=0)
    assert (len(trained), len(held_out)) == (1100, 100), "91.7% and 8.33% of 1,200 images"


def test_the_one_cycle_is_described_from_its_start_to_its_peak_and_its_end():
    recipe = load_config("step3")  # lr 0.1, div_factor 10, final_div_factor 100, pct_start 0.2
    assert "one-cycle learning rate over 15 epochs (0.01 → 0.1 in the first 20%, then → 0.0001)" in recipe.describe()
    assert "(0.0016 → 0.04 in the first 10%, then → 1.6e-07)" in load_config("fastest").describe()
    assert "in the first 12.5%" in recipe.replace(pct_start=0.125).describe(), "the share as set, not rounded"
    assert "over 13 epochs" in recipe.replace(anneal_epochs=13).describe()


def test_model_names_are_the_classes_of_models_py():
    names = model_names()
    assert {"Model_1", "Model_2", "Model_3", "MiniVGG"} <= set(names)
    assert all(issubclass(getattr(models, name), torch.nn.Module) for name in names)
    assert not {"ConvBNReLU", "BasicBlock", "SeededDropout"} & set(names), "building blocks are not networks"


def test_recipe_cut_for_the_smoke_profile():
    class Smoke:
        is_smoke, seeds = True, 2

        def epochs(self, wanted):
            return 1

    recipe = load_config("cnn_minivgg").for_profile(Smoke())
    assert (recipe.epochs, recipe.batches_per_epoch, recipe.seeds) == (1, 3, (6,))
    step3 = load_config("step3").for_profile(Smoke())
    assert (step3.epochs, step3.anneal_epochs, step3.clean_epochs, step3.seeds) == (1, 1, 0, (1, 2))


def test_the_split_holds_validation_images_apart_drawn_by_the_seed_then_takes_the_share_trained_on():
    ids = ImageSet(torch.zeros(120, 28, 28, dtype=torch.uint8), torch.arange(120))  # each label: its image's index
    train, val = Recipe(val_fraction=0.25).split(ids, seed=1)
    trained, held_out = set(train.labels.tolist()), set(val.labels.tolist())
    assert (len(train), len(val)) == (90, 30) and len(trained) == 90 and len(held_out) == 30
    assert not trained & held_out, "no validation image is trained on"
    assert trained | held_out == set(range(120)), "and none is lost"
    assert held_out != set(range(30)), "drawn at random, not the first images"
    again_train, again_val = Recipe(val_fraction=0.25).split(ids, seed=1)
    assert torch.equal(again_train.labels, train.labels) and torch.equal(again_val.labels, val.labels), "seeded"
    assert set(Recipe(val_fraction=0.25).split(ids, seed=2)[1].labels.tolist()) != held_out, "another seed, another draw"
    # train_fraction: a share of the whole set, the first of the training images left after the hold-out
    part, part_val = Recipe(val_fraction=0.25, train_fraction=0.5).split(ids, seed=1)
    assert torch.equal(part.labels, train.labels[:60]) and torch.equal(part_val.labels, val.labels)
    everything, none = Recipe().split(ids, seed=1)
    assert none is None and torch.equal(everything.labels, ids.labels)
    first, none = Recipe(train_fraction=0.25).split(ids, seed=1)
    assert none is None and first.labels.tolist() == list(range(30))


def test_a_split_seed_holds_out_the_same_images_whatever_the_run_s_seed():
    ids = ImageSet(torch.zeros(120, 28, 28, dtype=torch.uint8), torch.arange(120))
    fixed = Recipe(val_fraction=0.25, split_seed=5)
    drawn = [fixed.split(ids, seed=seed) for seed in (1, 2, 3)]
    assert all(torch.equal(val.labels, drawn[0][1].labels) and torch.equal(train.labels, drawn[0][0].labels)
               for train, val in drawn), "the runs of every seed train and validate on the same images"
    assert torch.equal(drawn[0][1].labels, Recipe(val_fraction=0.25).split(ids, seed=5)[1].labels), \
        "the images seed 5 would hold out"
    minivgg = load_config("cnn_minivgg")
    assert minivgg.split_seed == minivgg.seeds[0], "a run of another seed (train --seed 7) validates on 06's split"
    assert {load_config(f"cnn_{name}").split_seed for name in ("simple", "deeper", "twobranch")} == {6}, \
        "the protocol's, inherited: every model of 06 validates on the same images"
    assert minivgg.for_profile(get_profile("smoke")).split_seed == 6, "a quick run validates on the same images too"


def test_early_stopping_watches_from_the_end_of_the_warm_up():
    assert load_config("cnn_simple").monitor_from == 4  # 25% of 10 epochs warm up: epochs 1-3 (the third in part)
    assert Recipe(scheduler="none").monitor_from == 1


def test_one_cycle_needs_three_steps_and_warms_up_for_two_at_least():
    parameter = torch.nn.Parameter(torch.zeros(1))
    recipe = Recipe(epochs=1, scheduler="onecycle", lr=0.1)
    assert recipe.make_scheduler(recipe.make_optimizer([parameter]), steps_per_epoch=2) is None
    scheduler = recipe.make_scheduler(recipe.make_optimizer([parameter]), steps_per_epoch=4)
    assert scheduler.total_steps == 4 and scheduler._schedule_phases[0]["end_step"] == 1  # 2 steps up: 0, 1
    optimizer = recipe.make_optimizer([parameter])
    scheduler = recipe.make_scheduler(optimizer, steps_per_epoch=3)  # the shortest cycle reaches its peak too
    rates = [optimizer.param_groups[0]["lr"]]
    for _ in range(2):
        optimizer.step()  # as training orders them
        scheduler.step()
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates[1] == pytest.approx(0.1) and rates[0] < 0.1 and rates[2] < 0.1
    long = Recipe(epochs=10, scheduler="onecycle", lr=0.1, pct_start=0.6)  # a long run keeps the warm-up it asks for
    scheduler = long.make_scheduler(long.make_optimizer([parameter]), steps_per_epoch=100)
    assert scheduler._schedule_phases[0]["end_step"] == 599


@pytest.mark.parametrize("monitor, mode", [("val_loss", "min"), ("val_acc", "max")])
def test_a_plateau_schedule_waits_for_the_monitored_number_to_improve(monitor, mode):
    recipe = Recipe(scheduler="plateau", monitor=monitor, val_fraction=0.1, lr=1.0)
    optimizer = recipe.make_optimizer([torch.nn.Parameter(torch.zeros(1))])
    scheduler = recipe.make_scheduler(optimizer, steps_per_epoch=10)
    improving = [0.5, 0.4, 0.3, 0.2, 0.1] if mode == "min" else [90, 91, 92, 93, 94]
    for value in improving:
        scheduler.step(value)
    assert scheduler.mode == mode and optimizer.param_groups[0]["lr"] == 1.0, "improving: the rate holds"
    for _ in range(2):  # the number gets worse (a loss that rises, an accuracy that falls): two epochs of patience
        scheduler.step(improving[0])
    assert optimizer.param_groups[0]["lr"] == 1.0
    scheduler.step(improving[0])
    assert optimizer.param_groups[0]["lr"] == 0.5, "a third epoch without improvement halves the rate"


def made_up(train, test):
    return History([{"epoch": i + 1, "train_acc": a, "test_acc": b, "seconds": 1.0, "images_per_s": 10.0}
                    for i, (a, b) in enumerate(zip(train, test))])


def test_clean_epochs_effect_compares_the_first_clean_epoch_with_the_last_augmented_one():
    history = made_up([97.0, 98.0, 99.5, 99.6], [98.5, 99.0, 99.3, 99.4])
    effect = clean_epochs_effect(history, clean_epochs=2)
    assert effect["gain"] == pytest.approx(0.3) and effect["augmented_gap"] == pytest.approx(-1.0)
    assert effect["gap_alike"] == pytest.approx(-1.0), "without a probe, the gap is the during-epoch one"
    for row, probed in zip(history.rows, [98.0, 99.2, 99.6, 99.8]):
        row["train_eval_acc"] = probed
    probed_effect = clean_epochs_effect(history, clean_epochs=2)
    assert probed_effect["gap_alike"] == pytest.approx(0.2) and probed_effect["augmented_gap"] == pytest.approx(-1.0)
    assert all(math.isnan(v) for v in clean_epochs_effect(history, clean_epochs=0).values())


def test_run_summary_reads_size_best_last_epochs_and_gap():
    summary = run_summary(models.Model_1(), made_up([99.0, 99.6, 99.8, 99.9], [99.0, 99.5, 99.3, 99.45]))
    assert summary["params"] == 6_950 and summary["epochs"] == 4
    assert (summary["best_test_acc"], summary["best_epoch"], summary["final_test_acc"]) == (99.5, 2, 99.45)
    assert summary["min_last3_test_acc"] == 99.3 and not summary["last3_met"]
    assert summary["last3_spread"] == pytest.approx(0.2) and summary["last5_spread"] == pytest.approx(0.5), "all 4"
    assert summary["verdict"] == "overfits" and summary["training_seconds"] == 4.0


def test_bf16_is_a_fixed_rule_the_config_asks_and_the_device_must_compute_it_natively(monkeypatch):
    from mnist_utils import precision
    from mnist_utils.precision import Autocast

    cpu = torch.device("cpu")
    asks, plain = load_config("cnn_simple"), load_config("step1")
    assert asks.bf16 and not plain.bf16 and "bfloat16" in asks.describe()
    model = torch.nn.Linear(2, 2)
    monkeypatch.setattr(precision, "bf16_native", lambda device: True)
    assert asks.precision(cpu) == "bfloat16" and plain.precision(cpu) == "float32"
    wrapped = asks.computing(model, cpu)
    assert isinstance(wrapped, Autocast) and wrapped.model is model, "the same weights, trained under autocast"
    assert wrapped(torch.ones(3, 2)).dtype == torch.float32, "logits come back in float32 for the loss"
    assert plain.computing(model, cpu) is model
    monkeypatch.setattr(precision, "bf16_native", lambda device: False)
    assert asks.precision(cpu) == "float32" and asks.computing(model, cpu) is model, "emulated bf16 is slower"
    with pytest.raises(ValueError, match="precision must be 'bfloat16' or 'float32'"):
        precision.in_precision(model, "float16", cpu)


def test_packed_seeds_refuse_a_bf16_recipe_rather_than_ignore_it(mnist):
    from mnist_utils.training import train_seeds

    with pytest.raises(ValueError, match="packed seeds train in float32"):
        train_seeds(load_config("step3", ["bf16=true"]), mnist, torch.device("cpu"))


def test_a_config_that_fixes_threads_trains_on_them_and_the_callers_come_back(monkeypatch, tmp_path):
    import torch

    from mnist_utils import trainer
    from mnist_utils.config import use_threads

    seen = []
    monkeypatch.setattr(trainer, "_train", lambda model, *rest: seen.append(torch.get_num_threads()) or tmp_path)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        trainer.train_from_config("step1", out_dir=tmp_path / "run1")  # threads: 1
        trainer.train_from_config("step3", out_dir=tmp_path / "run2")  # not set: the caller's
        assert seen == [1, 2] and torch.get_num_threads() == 2
        use_threads(None)
        assert torch.get_num_threads() == 2
        with pytest.raises(ValueError, match="at least 1"):
            use_threads(0)
    finally:
        torch.set_num_threads(before)
    assert load_config("step2").threads == load_config("step1").threads == 1  # Step 2 changes the model alone
    assert load_config("finetune_head").threads == load_config("finetune_random").threads == 1


def test_training_a_recipe_from_code_computes_on_its_threads_as_its_notebook_does(monkeypatch, mnist):
    import torch

    from mnist_utils import training
    from mnist_utils.engine import History

    seen = []
    monkeypatch.setattr(training, "fit", lambda *args, **kwargs: seen.append(torch.get_num_threads()) or History())
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        for name in ("step2", "step3"):  # threads: 1 (from step1.yaml); not set
            recipe = load_config(name)
            training.train_recipe(build_model(recipe), recipe, mnist, torch.device("cpu"), seed=1)
        assert seen == [1, 2] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_a_recipe_trains_and_validates_on_its_own_loss(monkeypatch, mnist):
    import torch

    from mnist_utils import training
    from mnist_utils.engine import History

    seen = []
    monkeypatch.setattr(training, "fit", lambda *args, **kwargs: seen.append(kwargs["loss_fn"]) or History())
    logits, labels = torch.tensor([[4.0, 0.0, 0.0], [0.0, 2.0, 1.0]]), torch.tensor([0, 2])
    for smoothing in (0.0, 0.1):
        recipe = load_config("cnn_minivgg", [f"label_smoothing={smoothing}", "epochs=1"])
        training.train_recipe(build_model(recipe), recipe, mnist, torch.device("cpu"), seed=1)
        expected = torch.nn.CrossEntropyLoss(label_smoothing=smoothing)(logits, labels)
        assert torch.allclose(seen[-1](logits, labels), expected)
    assert not torch.allclose(seen[0](logits, labels), seen[1](logits, labels))
    assert "label smoothing 0.1" in recipe.describe()


def test_a_recipe_s_loss_floor_is_the_loss_of_a_model_that_predicts_its_targets_exactly():
    for smoothing in (0.0, 0.1, 0.3):
        recipe = Recipe(label_smoothing=smoothing)
        labels = torch.arange(10)
        targets = torch.full((10, 10), smoothing / 10) + torch.eye(10) * (1 - smoothing)  # as make_loss smooths them
        exact = recipe.loss_fn(torch.log(targets.clamp_min(1e-30)), labels)  # softmax(log t) = t
        assert math.isclose(recipe.loss_floor, exact.item(), abs_tol=1e-6), smoothing
    assert f"{load_config('cnn_simple').loss_floor:.3f}" == "0.500", "06's configs: targets of 0.91 and 0.01"


def test_a_recipe_with_ema_hands_fit_its_decay_and_says_so(mnist, monkeypatch):
    from mnist_utils import training

    seen = []
    monkeypatch.setattr(training, "fit", lambda *args, **kwargs: seen.append(kwargs["ema"]) or History())
    for ema in (None, 0.99):
        recipe = load_config("cnn_minivgg", ["epochs=1"] + ([f"ema={ema}"] if ema else []))
        training.train_recipe(build_model(recipe), recipe, mnist, torch.device("cpu"), seed=1)
        assert ("(EMA, decay 0.99)" in recipe.describe()) == bool(ema)
    assert seen == [None, 0.99]


@pytest.mark.parametrize("optimizer, key", [("sgd", "momentum"), ("adam", "betas")])
def test_a_one_cycle_recipe_says_the_momentum_its_optimizer_gets(optimizer, key):
    """One-cycle replaces the config's momentum (Adam's first beta) with its own cycle; the recipe's sentence
    must name what the optimizer is given, step by step, not the config's constant."""
    recipe = Recipe(optimizer=optimizer, scheduler="onecycle", epochs=2, momentum=0.9, fused=None)
    optimizer_ = recipe.make_optimizer(torch.nn.Linear(2, 2).parameters())
    scheduler = recipe.make_scheduler(optimizer_, 50)
    seen = []
    for _ in range(100):
        group = optimizer_.param_groups[0]
        seen.append(group[key] if key == "momentum" else group[key][0])
        optimizer_.step()
        scheduler.step()
    low, high = min(seen), max(seen)
    assert (round(low, 6), round(high, 6)) == ONE_CYCLE_MOMENTUM and 0.9 not in seen
    assert f"{high:g} → {low:g} → {high:g}" in recipe.describe() and not re.search(r"0\.9(?!\d)", recipe.describe())
    constant = recipe.replace(scheduler="none")
    assert ("Nesterov momentum 0.9" in constant.describe()) == (optimizer == "sgd") and "→" not in constant.describe()
