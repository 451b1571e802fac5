"""What a notebook's prose says about its config, the config says: a changed config fails here, naming the
sentence to update, instead of leaving a tutorial that describes a recipe it no longer runs."""
import inspect
import json
import math
import re
from fractions import Fraction

import pytest
import yaml

import models
from mnist_utils.config import PROJECT_ROOT, find_notebooks
from mnist_utils.recipes import load_config

SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
PART_OF = {Fraction(1, 5): "fifth", Fraction(1, 4): "quarter", Fraction(1, 12): "twelfth",  # as the prose words them
           Fraction(1, 16): "sixteenth"}


def cell_text(stem: str, kind: str = "markdown") -> str:
    """The markdown cells (or the code cells, `kind="code"`) of notebooks/`stem`.ipynb, every run of white space
    one space."""
    cells = json.loads((PROJECT_ROOT / "notebooks" / f"{stem}.ipynb").read_text())["cells"]
    return " ".join(" ".join("".join(c["source"]) for c in cells if c["cell_type"] == kind).split())


def power_of_ten(x: float) -> str:
    """5e-4 as the prose writes it, 5·10⁻⁴; 1e-4 as 10⁻⁴."""
    exponent = math.floor(math.log10(x))
    mantissa = round(x / 10**exponent, 6)
    power = "10" + str(exponent).translate(SUPERSCRIPT)
    return power if mantissa == 1 else f"{mantissa:g}·{power}"


def part(x: float) -> str:
    fraction = Fraction(x).limit_denominator(100)
    if fraction not in PART_OF:
        raise ValueError(f"a config now gives {x} ({fraction}), which the prose has no word for: reword the sentence "
                         f"that states it, then add the word to PART_OF")
    return PART_OF[fraction]


def missing(stem: str, phrases: list[str]) -> list[str]:
    text = cell_text(stem)
    return [phrase for phrase in phrases if phrase not in text]


def test_the_words_for_numbers_are_right():
    assert power_of_ten(5e-4) == "5·10⁻⁴" and power_of_ten(1e-4) == "10⁻⁴" and power_of_ten(0.002) == "2·10⁻³"
    assert part(0.2) == "fifth" and part(1 / 12) == "twelfth"
    with pytest.raises(ValueError, match=r"0.3 \(3/10\), which the prose has no word for"):
        part(0.3)
    assert missing("03_step3_augment_onecycle", ["a random rotation within ±7°", "within ±70°"]) == ["within ±70°"]


def test_step3_prose_states_its_config():
    recipe = load_config("step3")
    augment, start = recipe.augment, recipe.lr / recipe.div_factor
    fresh = yaml.safe_load((PROJECT_ROOT / "configs/searches/step3_fresh.yaml").read_text())["candidates"][0]
    fresh_seeds = yaml.safe_load(fresh[0].split("=", 1)[1])
    assert missing("03_step3_augment_onecycle", [
        f"a random rotation within ±{augment.rotation:g}°", f"a random shift within ±{100 * augment.translate:g}%",
        f"a random zoom between {100 * augment.scale[0]:g}% and {100 * augment.scale[1]:g}%",
        f"The last {recipe.clean_epochs} epochs", f"warm up from {start:g} to a peak of {recipe.lr:g}",
        f"over the first {part(recipe.pct_start)} of the run", f"anneal to {start / recipe.final_div_factor:g}",
        f"weight decay of {power_of_ten(recipe.weight_decay)}", f"batches of {recipe.batch_size}",
        f"Five fresh seeds, {fresh_seeds[0]} to {fresh_seeds[-1]}",
        f"moves {100 * (1 - recipe.ema):g}% of the way", f"(`ema: {recipe.ema:g}`)",
        f"last {round(1 / (1 - recipe.ema))} steps",
    ]) == [], "notebook 03's Target or its fresh-seed section no longer states configs/step3.yaml: update them"
    assert len(fresh_seeds) == 5 and fresh == [f"seeds=[{','.join(map(str, fresh_seeds))}]"]
    # the Target says the average spans "under half an epoch": 60,000 training digits in batches
    assert "under half an epoch" in cell_text("03_step3_augment_onecycle")
    assert 1 / (1 - recipe.ema) < math.ceil(60_000 / recipe.batch_size) / 2


def test_the_cnn_protocol_prose_states_its_configs():
    protocol, minivgg, twobranch = (load_config(name) for name in ("cnn_simple", "cnn_minivgg", "cnn_twobranch"))
    smoothing, short_epoch = protocol.label_smoothing, protocol.batches_per_epoch * protocol.batch_size
    widths = minivgg.model_args["widths"]
    classic = inspect.signature(models.MiniVGG).parameters["widths"].default  # the class's own, VGG's
    assert missing("06_cnn_comparison", [
        f"One {part(protocol.val_fraction)} of the training set ({round(60_000 * protocol.val_fraction):,} images)",
        f"over the first {part(protocol.pct_start)} from 1/{protocol.div_factor:g} of the peak up to the peak, "
        f"{power_of_ten(protocol.lr)}",
        f"**Label smoothing** (ε = {smoothing:g})",
        f"aims at {1 - smoothing + smoothing / 10:g} for the true digit and {smoothing / 10:g} for each of the others",
        f"an \"epoch\" here is {protocol.batches_per_epoch} batches ({short_epoch:,} images",
        f"every {short_epoch:,} images", f"ends a run after {protocol.patience} epochs without a lower validation loss",
        f"to {', '.join(map(str, widths[:-1]))} and {widths[-1]} channels",
        f"a {part((widths[0] / classic[0]) ** 2)} of the arithmetic per convolution",
        f"weight decay ({power_of_ten(twobranch.weight_decay)},",
    ]) == [], "notebook 06's protocol no longer states configs/cnn_*.yaml: update it"
    # the Target, the protocol, the ensemble
    aims = set(re.findall(r"aims at (\d\.\d+)", cell_text("06_cnn_comparison")))
    assert aims == {f"{1 - smoothing + smoothing / 10:g}"}, f"06 says the loss aims at {sorted(aims)}: update it"


def test_the_block_comparison_states_the_training_images_its_gap_scores():
    probe = load_config("blocks_vgg").train_probe
    assert probe and missing("04_vgg_resnet_blocks", [f"the accuracy on {probe:,} training images"]) == [], \
        "notebook 04's Target no longer states configs/blocks_vgg.yaml's train_probe: update it"
    assert {load_config(name).train_probe for name in ("blocks_vgg_bn", "blocks_vgg_bn_aug", "blocks_resnet_bn_aug",
                                                       "blocks_resnet_no_shortcut")} \
        == {probe}, "the five blocks' gaps score the same training images"


def test_the_readme_names_the_configs_that_train_exactly_the_notebooks_model():
    readme = " ".join((PROJECT_ROOT / "README.md").read_text().split())
    sentence = "the configs that fix one CPU thread (`threads: 1`: ...) train exactly the notebook's model"
    listed = re.search(r"the configs that fix one CPU thread \(`threads: 1`: (.*?)\) train exactly", readme, re.I)
    assert listed, f"README no longer has the sentence '{sentence}': update this test or the README"
    names = re.findall(r"`([\w*]+)`", listed.group(1))
    code = " ".join(cell_text(path.stem, "code") for path in find_notebooks())
    stems = [path.stem for path in (PROJECT_ROOT / "configs").glob("*.yaml")]
    # a notebook's configs only: a config no notebook runs trains no notebook's model, whatever its threads
    one_thread = {stem for stem in stems if load_config(stem).threads == 1 and f'"{stem}"' in code}
    named = {stem for stem in stems if any(re.fullmatch(name.replace("*", ".*"), stem) for name in names)}
    assert named == one_thread, (f"README's sentence '{sentence}' and the notebooks' one-thread configs differ in "
                                 f"{sorted(named ^ one_thread)}: list each config a notebook runs with threads: 1, "
                                 "and no other")


def test_the_readme_s_table_of_notebooks_has_a_row_for_each_notebook_in_number_order():
    readme = (PROJECT_ROOT / "README.md").read_text()
    table = readme.split("## The notebooks", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\d\d_\w+)` \|", table, re.MULTILINE)
    stems = [path.stem for path in find_notebooks()]
    assert rows == stems, f"README's table of notebooks: a row for each of {stems}, in this order (it has {rows})"
