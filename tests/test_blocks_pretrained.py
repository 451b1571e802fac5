"""One-block VGG/ResNet models (04) and the pretrained-network machinery (05): one-channel stems, weight
loading and provenance, frozen features."""
import inspect
import re

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import models
from mnist_utils import features, pretrained
from mnist_utils.checkpoints import CheckpointError, load_model, save_checkpoint
from mnist_utils.files import sha256_of
from mnist_utils.pretrained import WeightsError, rgb_to_gray_conv
from mnist_utils.batches import Batches
from mnist_utils.features import FeatureBatches, extract_features, fit_one_cycle, linear_probe, resolution_sweep
from mnist_utils.recipes import load_config
from mnist_utils.inspection import count_parameters, feature_map_size, smallest_input_size


# ----------------------------------------------------------------------------- 04: the models


@pytest.mark.parametrize("cls", [models.OneBlockVGG, models.OneBlockResNet])
def test_docstring_states_the_exact_parameter_count_without_and_with_batchnorm(cls):
    """'33,850 parameters, 33,882 with BatchNorm': the default build's count first, then the other's."""
    by_default = inspect.signature(cls).parameters["batchnorm"].default
    other = f"{count_parameters(cls(batchnorm=not by_default)):,} with{'out' * by_default} BatchNorm"
    assert re.search(rf"{count_parameters(cls()):,} parameters, {other}\b", cls.__doc__)


def test_the_two_networks_have_comparable_budgets_and_classify_mnist_shaped_input():
    vgg, resnet = models.OneBlockVGG(batchnorm=True), models.OneBlockResNet(batchnorm=True)
    assert abs(count_parameters(vgg) / count_parameters(resnet) - 1) < 0.05
    for model in (vgg, resnet):
        assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in models.OneBlockVGG(batchnorm=False).modules())


def test_basic_block_projects_the_shortcut_only_when_the_shape_changes():
    assert isinstance(models.BasicBlock(8, 8).shortcut, nn.Identity)
    block = models.BasicBlock(8, 16, stride=2)
    assert isinstance(block.shortcut[0], nn.Conv2d) and block.shortcut[0].kernel_size == (1, 1)
    assert block(torch.randn(2, 8, 14, 14)).shape == (2, 16, 7, 7)


def test_residual_block_adds_its_input_when_the_branch_is_silenced():
    block = models.BasicBlock(4, 4, batchnorm=True).eval()
    nn.init.zeros_(block.bn2.weight)  # the residual branch now outputs zero
    x = torch.randn(2, 4, 7, 7)
    assert torch.equal(block(x), torch.relu(x))


def test_a_block_without_its_shortcut_adds_nothing_and_has_no_projection():
    plain = models.BasicBlock(4, 4, batchnorm=True, shortcut=False).eval()
    nn.init.zeros_(plain.bn2.weight)
    nn.init.zeros_(plain.bn2.bias)  # the branch outputs zero, and nothing is added to it
    assert torch.equal(plain(torch.randn(2, 4, 7, 7)), torch.zeros(2, 4, 7, 7))
    strided = models.BasicBlock(8, 16, stride=2, shortcut=False)
    assert strided.shortcut is None and not any(m.kernel_size == (1, 1) for m in strided.modules()
                                                if isinstance(m, nn.Conv2d))
    resnet, no_shortcut = models.OneBlockResNet(), models.OneBlockResNet(shortcut=False)
    assert count_parameters(resnet) - count_parameters(no_shortcut) == count_parameters(resnet.block.shortcut)
    assert f"{count_parameters(no_shortcut):,} with it and no shortcut" in models.OneBlockResNet.__doc__
    assert no_shortcut(torch.randn(3, 1, 28, 28)).shape == (3, 10)


def test_a_resnet_without_its_shortcut_is_saved_and_rebuilt_as_one(tmp_path):
    model = models.OneBlockResNet(shortcut=False).eval()
    with pytest.raises(CheckpointError, match="does not rebuild"):  # its arguments must say it has no shortcut
        save_checkpoint(model, tmp_path / "wrong", model_name="OneBlockResNet", model_args={"batchnorm": True})
    save_checkpoint(model, tmp_path / "plain", model_name="OneBlockResNet",
                    model_args={"batchnorm": True, "shortcut": False})
    loaded, _ = load_model(tmp_path / "plain")
    x = torch.randn(2, 1, 28, 28)
    assert loaded.block.shortcut is None and torch.equal(loaded(x), model(x))


# ----------------------------------------------------------------------------- one-channel stems


def test_gray_conv_sums_the_rgb_kernels_and_matches_the_rgb_conv_on_a_gray_image():
    torch.manual_seed(0)
    rgb = nn.Conv2d(3, 8, 7, stride=2, padding=3, bias=False)
    gray = rgb_to_gray_conv(rgb)
    assert gray.in_channels == 1 and gray.weight.shape == (8, 1, 7, 7)
    assert torch.equal(gray.weight, rgb.weight.sum(dim=1, keepdim=True))
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(gray(x), rgb(x.expand(-1, 3, -1, -1)), rtol=1e-5, atol=1e-5)
    assert rgb.weight.shape == (8, 3, 7, 7), "the original convolution is left alone"


def test_gray_conv_refuses_what_it_cannot_convert():
    with pytest.raises(ValueError, match="3 channels"):
        rgb_to_gray_conv(nn.Conv2d(1, 8, 3))


# ----------------------------------------------------------------------------- ResNet-18: torchvision's loading path, offline


@pytest.fixture
def stand_in_resnet18(tmp_path, monkeypatch):
    """A random ResNet-18 state dict where torchvision's weights API looks first: $TORCH_HOME/hub/checkpoints.
    The network is never asked (a probe would fail the test)."""
    from torchvision.models import resnet18

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(pretrained, "reachable", lambda *args: pytest.fail("no network access expected"))
    torch.manual_seed(0)
    state = resnet18().state_dict()
    path = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    return path, state


def test_resnet18_loads_through_the_torch_hub_cache_and_sums_conv1(stand_in_resnet18):
    path, state = stand_in_resnet18
    assert pretrained.resnet18_weights_path() == path
    assert pretrained.resnet18_weights_available()
    net = pretrained.resnet18_for_mnist(check_hash=False)  # the stand-in is not the published file
    backbone = net.model.backbone
    assert torch.equal(backbone.conv1.weight, state["conv1.weight"].sum(dim=1, keepdim=True))
    assert torch.equal(backbone.layer3[1].conv2.weight, state["layer3.1.conv2.weight"])
    assert isinstance(backbone.fc, nn.Identity) and net.model.head.out_features == 10 and net.model.head.in_features == 512
    assert pretrained.stem_conversion_error(net) == 0.0
    assert net.provenance() == {"backbone": "resnet18", "pretrained": True,
                                "weights_source": net.source, "weights_file": "resnet18-f37072fd.pth",
                                "weights_sha256": sha256_of(path)}
    assert net.model(torch.rand(2, 1, 32, 32)).shape == (2, 10)


def test_one_channel_resnet18_computes_what_the_rgb_network_computes_on_a_gray_image(stand_in_resnet18):
    from torchvision.models import ResNet18_Weights, resnet18

    net = pretrained.resnet18_for_mnist(check_hash=False).model.eval()
    rgb = resnet18(weights=ResNet18_Weights.IMAGENET1K_V1).eval()
    rgb.fc = nn.Identity()
    x = torch.rand(2, 1, 40, 40)
    with torch.no_grad():
        torch.testing.assert_close(net.backbone(x), rgb(x.expand(-1, 3, -1, -1)), rtol=1e-4, atol=1e-4)


def test_a_cached_file_that_is_not_the_published_one_is_refused_with_the_fix(stand_in_resnet18):
    with pytest.raises(WeightsError, match="not the published file.*Delete it"):
        pretrained.resnet18_for_mnist()


def test_offline_without_cached_weights_resnet18_is_reported_unavailable_quickly(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    asked = []
    monkeypatch.setattr(pretrained, "reachable", lambda address, timeout: asked.append((address, timeout)) or False)
    assert not pretrained.resnet18_weights_available(timeout=0.5)
    assert asked == [(pretrained.TORCHVISION_WEIGHTS_HOST, 0.5)]


def test_random_resnet18_has_no_weights_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    net = pretrained.resnet18_for_mnist(pretrained=False)
    assert net.provenance()["weights_file"] is None and not net.pretrained
    assert "random" in net.name and "random" in net.source
    with pytest.raises(ValueError, match="no weights file"):
        pretrained.stem_conversion_error(net)


@pytest.mark.parametrize("family", pretrained.FAMILIES)
@pytest.mark.parametrize("size", [0, -28, 2.5])
def test_an_image_size_that_is_not_a_positive_whole_number_is_refused(family, size):
    with pytest.raises(ValueError, match=rf"image_size is the side of the input in pixels, a whole number from 1 up "
                                         rf"\(MNIST's is 28\), got {size}"):
        pretrained.pretrained_for_mnist(family, pretrained=False, image_size=size)


def test_unknown_family_names_the_known_ones():
    with pytest.raises(ValueError, match="resnet18, efficientnet-lite0"):
        pretrained.pretrained_for_mnist("vgg16", image_size=32)


# ----------------------------------------------------------------------------- EfficientNet-Lite0: genuine ImageNet weights


def test_efficientnet_lite0_weights_are_the_published_file_with_trained_batchnorm_statistics():
    path = pretrained.efficientnet_lite0_weights_path()
    digest, matches = pretrained.hash_prefix_matches(path)
    assert matches and digest.startswith("57934424")
    state = torch.load(path, map_location="cpu", weights_only=True)
    running_var = torch.cat([v for k, v in state.items() if k.endswith("running_var")])
    assert running_var.std() > 0.1, "trained BatchNorm statistics are far from their initial ones"


def test_efficientnet_lite0_one_channel_stem_keeps_the_pretrained_filters():
    net = pretrained.efficientnet_lite0_for_mnist(image_size=40)
    assert pretrained.stem_conversion_error(net) == 0.0
    assert net.provenance()["weights_file"] == "efficientnet-lite0-57934424.pth"
    assert (net.mean, net.std) == (127 / 255, 128 / 255)
    assert all(m.momentum == 0.1 for m in net.model.modules() if isinstance(m, nn.BatchNorm2d))


def test_efficientnet_lite0_through_the_mnist_adapter_recognises_a_photograph():
    """Grace Hopper's portrait (shipped with matplotlib), turned grey, fed to the one-channel network with
    its ImageNet classifier put back: she wears a naval uniform."""
    cbook = pytest.importorskip("matplotlib.cbook")
    image = pytest.importorskip("matplotlib.image")
    from torchvision.models import ResNet18_Weights  # only for the ImageNet class names

    try:
        with cbook.get_sample_data("grace_hopper.jpg") as handle:
            photo = image.imread(handle, format="jpg")
    except (FileNotFoundError, ValueError):
        pytest.skip("matplotlib's sample data is not installed")
    net = pretrained.efficientnet_lite0_for_mnist(image_size=224, num_classes=1000)
    state = torch.load(net.weights_path, map_location="cpu", weights_only=True)
    net.model.head.load_state_dict({"weight": state["_fc.weight"], "bias": state["_fc.bias"]})
    x = torch.from_numpy(np.array(photo)).permute(2, 0, 1).float().div(255).mean(dim=0, keepdim=True)
    x = torch.nn.functional.interpolate(x[None], size=(224, 224), mode="bilinear", antialias=True)
    with torch.no_grad():
        top5 = net.model.eval()((x - net.mean) / net.std).topk(5).indices[0].tolist()
    names = [ResNet18_Weights.IMAGENET1K_V1.meta["categories"][i] for i in top5]
    assert names[0] == "military uniform", names


# ----------------------------------------------------------------------------- frozen features


def test_extract_features_is_one_eval_pass_in_order(mnist):
    batches = Batches(mnist.test.head(300), 128)
    backbone = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1))
    before = backbone[1].running_mean.clone()
    features, labels = extract_features(backbone, batches, torch.device("cpu"))
    assert features.shape == (300, 4) and torch.equal(labels, mnist.test.labels[:300])
    assert torch.equal(backbone[1].running_mean, before), "eval mode: BatchNorm statistics untouched"
    assert not features.is_inference() and not features.requires_grad


def test_feature_batches_cover_every_row_once_in_a_seeded_order():
    features, labels = torch.arange(10.0).view(10, 1), torch.arange(10)
    batches = FeatureBatches(features, labels, 4, shuffle=True, seed=3)
    first = [y for _, y in batches]
    assert len(batches) == 3 and [len(y) for y in first] == [4, 4, 2]
    assert sorted(torch.cat(first).tolist()) == list(range(10))
    again = FeatureBatches(features, labels, 4, shuffle=True, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(first, [y for _, y in again]))
    assert [y.tolist() for _, y in FeatureBatches(features, labels, 5)] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    with pytest.raises(ValueError, match="as many labels"):
        FeatureBatches(features, labels[:5], 4)


def test_a_frozen_backbone_recipe_trains_the_head_alone_and_leaves_the_backbone_as_it_was(mnist):
    # configs/finetune_head.yaml's path (train_model → train_head), on a tiny backbone with BatchNorm
    from collections import OrderedDict

    from mnist_utils.data import MNIST
    from mnist_utils.engine import test
    from mnist_utils.recipes import Recipe
    from mnist_utils.training import train_model

    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
    model = nn.Sequential(OrderedDict(backbone=backbone, head=nn.Linear(16, 10)))
    before = {name: value.clone() for name, value in model.state_dict().items()}
    # a pretrained recipe (only such a model has a backbone to freeze): the tiny model stands in for its network
    recipe = Recipe(model="pretrained", model_args={"family": "efficientnet-lite0"}, freeze_backbone=True,
                    val_fraction=0.25, epochs=2, batch_size=32, lr=0.01)
    cpu = torch.device("cpu")
    data = MNIST(mnist.train.head(256), mnist.test.head(64))
    history, seconds = train_model(model, recipe, data, cpu, seed=0, progress=None)
    assert len(history) == 2 and seconds > 0
    assert "val_acc" in history.rows[-1] and "test_acc" not in history.rows[-1], "validated; the test set kept apart"
    for name, value in model.state_dict().items():  # weights, BatchNorm running statistics and batch counts
        if name.startswith("backbone."):
            assert torch.equal(value, before[name]), f"{name}: the backbone is frozen"
        else:
            assert not torch.equal(value, before[name]), f"{name}: the head is trained"
    _, val = recipe.split(data.train, 0)  # the whole model on the validation images: what the head scored
    assert test(model, recipe.eval_batches(val, cpu), cpu).accuracy == history["val_acc"][-1]
    with pytest.raises(ValueError, match=r"train_head needs a model with \.backbone and \.head .*got Model_3"):
        train_model(models.Model_3(), recipe, data, cpu, seed=0, progress=None)
    # The head trains with the recipe's schedule, not one of its own: a constant rate where it names none, a
    # one-cycle (from a 25th of the peak) where it names one.
    assert recipe.scheduler == "none" and history["lr"] == [0.01, 0.01]
    cycled, _ = train_model(model, recipe.replace(scheduler="onecycle"), data, cpu, seed=0, progress=None)
    assert cycled["lr"][0] == pytest.approx(0.01 / 25)
    # Without a validation split, the test set is scored after each epoch, as for a whole model.
    unvalidated, _ = train_model(model, recipe.replace(val_fraction=0.0), data, cpu, seed=0, progress=None)
    assert "test_acc" in unvalidated.rows[-1] and "val_acc" not in unvalidated.rows[-1]
    assert unvalidated["test_acc"][-1] == test(model, recipe.eval_batches(data.test, cpu), cpu).accuracy


def test_feature_map_size_reports_what_reaches_global_pooling_and_changes_nothing():
    resnet = models.OneBlockResNet().train()
    running_mean = resnet.stem[0][1].running_mean.clone()
    assert feature_map_size(resnet, 28) == (7, 7)
    assert resnet.training and torch.equal(resnet.stem[0][1].running_mean, running_mean)
    effnet = pretrained.efficientnet_lite0_for_mnist(pretrained=False, image_size=32).model
    assert feature_map_size(effnet, 32) == (1, 1)
    with pytest.raises(ValueError, match="AdaptiveAvgPool2d"):
        feature_map_size(models.OneBlockVGG(), 28)


def test_feature_map_size_stops_at_the_pooling_so_a_head_elsewhere_is_never_run():
    # Notebook 05 moves a backbone to the GPU and leaves its head on the CPU: running that head fails. Here the
    # head only counts its calls; the probe must make none, and leave the model as it found it.
    calls = []
    head = nn.Linear(64, 10)
    head.register_forward_pre_hook(lambda module, inputs: calls.append(1))
    model = nn.Sequential(nn.Conv2d(1, 64, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)
    assert feature_map_size(model, 12) == (12, 12) and calls == []
    assert model(torch.zeros(2, 1, 12, 12)).shape == (2, 10) and calls == [1], "the probe's hook is gone"


def test_feature_map_size_names_a_pooling_module_that_the_forward_pass_never_calls():
    class PoolsByFunction(nn.Module):  # holds the module, but pools with the function
        def __init__(self):
            super().__init__()
            self.conv, self.pool = nn.Conv2d(1, 4, 3), nn.AdaptiveAvgPool2d(1)

        def forward(self, x):
            return F.adaptive_avg_pool2d(self.conv(x), 1)

    with pytest.raises(ValueError, match="PoolsByFunction's forward pass never calls its nn.AdaptiveAvgPool2d"):
        feature_map_size(PoolsByFunction(), 12)


def test_linear_probe_on_raw_pixels_separates_digits(mnist):
    result = linear_probe(nn.Flatten(), Batches(mnist.train.head(1000), 250),
                                Batches(mnist.test.head(500), 250), torch.device("cpu"), epochs=5, lr=3e-3)
    assert result["accuracy"] > 80 and result["images_per_s"] > 0


def test_fit_one_cycle_peaks_at_max_lr(mnist, monkeypatch):
    model = models.OneBlockVGG(batchnorm=True)
    batches = Batches(mnist.train.head(256), 64, shuffle=True)
    rates = []  # the rate of every step, as the optimizer takes it (the history keeps one per epoch)
    step = torch.optim.Adam.step

    def recorded(self, *args, **kwargs):
        rates.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recorded)
    history = fit_one_cycle(model, batches, None, torch.device("cpu"), epochs=3, max_lr=0.01, progress=None)
    assert len(history) == 3 and len(rates) == 12
    assert max(rates) == pytest.approx(0.01) and rates[0] == pytest.approx(0.01 / 25) and rates[-1] < 1e-4
    assert rates.index(max(rates)) == 2, "the warm-up: a quarter of the 12 steps, rounded up to whole steps"


@pytest.mark.parametrize("images, expected", [(64, [0.01]), (128, [0.01, 0.01]),  # too short to cycle: constant
                                               (192, [0.01 / 25, 0.01, 0]), (256, [0.01 / 25, 0.01, 0.005, 0])])
def test_fit_one_cycle_holds_the_rate_in_runs_too_short_to_cycle_and_peaks_at_the_second_step_of_others(
        mnist, monkeypatch, images, expected):
    rates, step = [], torch.optim.Adam.step

    def recorded(self, *args, **kwargs):
        rates.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recorded)
    history = fit_one_cycle(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), Batches(mnist.train.head(images), 64),
                            None, torch.device("cpu"), epochs=1, max_lr=0.01, progress=None)
    assert len(history) == 1 and history["train_loss"][0] > 0
    assert rates == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("family", ["efficientnet-lite0", "resnet18"])
def test_the_smallest_input_size_is_the_first_whose_last_map_is_2x2(family):
    recipe = load_config("finetune_full", [f"model_args.family={family}"])
    size = smallest_input_size(recipe, stop=64)
    built = {s: pretrained.pretrained_for_mnist(family, pretrained=False, image_size=s).model for s in (size - 1, size)}
    assert min(feature_map_size(built[size - 1], size - 1)) < 2 <= min(feature_map_size(built[size], size))
    assert smallest_input_size(recipe, stop=size - 1) is None, "none up to `stop` sees a 2×2 map"
    assert size == recipe.image_size == 33, "the config's size is the rule's for either family `auto` may pick"


def test_the_resolution_sweep_probes_the_backbone_built_for_each_size(mnist, monkeypatch):
    probed = []

    def probe(backbone, train_batches, val_batches, device, *, epochs, seed):
        train_images, _ = next(iter(train_batches))
        probed.append((type(backbone).__name__, tuple(train_images.shape[-2:]), train_batches.num_images,
                       val_batches.num_images, epochs, seed))
        return {"accuracy": 90.0 + len(probed), "images_per_s": 100.0 * len(probed)}

    monkeypatch.setattr(features, "linear_probe", probe)
    recipe = load_config("finetune_full", ["model_args.family=efficientnet-lite0"])
    rows = resolution_sweep(recipe, (28, 40), mnist.train.head(20), mnist.test.head(10), torch.device("cpu"),
                            epochs=7, seed=3)
    assert probed == [("EfficientNet", (28, 28), 20, 10, 7, 3), ("EfficientNet", (40, 40), 20, 10, 7, 3)]
    maps = [feature_map_size(pretrained.pretrained_for_mnist("efficientnet-lite0", pretrained=False,
                                                             image_size=size).model, size) for size in (28, 40)]
    assert rows == [{"input px": 28, "last feature map": "{}×{}".format(*maps[0]), "probe val %": 91.0,
                     "backbone images/s": 100.0},
                    {"input px": 40, "last feature map": "{}×{}".format(*maps[1]), "probe val %": 92.0,
                     "backbone images/s": 200.0}]


def test_feature_map_size_refuses_an_image_size_that_is_not_positive():
    with pytest.raises(ValueError, match="image_size must be a positive whole number"):
        feature_map_size(models.OneBlockResNet(), 0)


def test_a_pretrained_recipes_input_normalization_leaves_the_random_stream_alone():
    """`train` asks for it between seeding and training: the notebook's numbers need the stream untouched."""
    from mnist_utils.recipes import build_pretrained, input_normalization, load_config
    recipe = load_config("finetune_full")
    torch.manual_seed(0)
    state = torch.get_rng_state()
    normalization = input_normalization(recipe)
    assert torch.equal(torch.get_rng_state(), state)
    assert normalization == build_pretrained(recipe, pretrained=False).inputs, "what the network itself is fed"


def test_a_recipes_batches_are_normalised_as_its_model_expects_unless_told_otherwise(mnist):
    """`run_recipe` on a pretrained config passes no `inputs`: its batches must still use the backbone's."""
    from mnist_utils.data import MNIST_MEAN, MNIST_STD
    from mnist_utils.recipes import build_pretrained, load_config
    images, cpu = mnist.train.head(256), torch.device("cpu")  # a whole batch of cnn_simple's 128
    backbone = build_pretrained(load_config("finetune_full"), pretrained=False)  # what the network itself expects
    for name, expected in (("finetune_full", (backbone.mean, backbone.std)), ("cnn_simple", (MNIST_MEAN, MNIST_STD))):
        recipe = load_config(name)
        for batches in (recipe.eval_batches(images, cpu), recipe.train_batches(images, cpu, seed=1).batches
                        if recipe.batches_per_epoch else recipe.train_batches(images, cpu, seed=1)):
            assert (batches.mean, batches.std) == expected, name
    assert (backbone.mean, backbone.std) != (MNIST_MEAN, MNIST_STD)
    told = load_config("finetune_full").eval_batches(images, cpu, mean=0.5, std=0.25)
    assert (told.mean, told.std) == (0.5, 0.25)


def test_notebook_05s_yardstick_trains_on_the_pretrained_networks_digits_by_step3s_recipe():
    small, full, step3 = (load_config(name) for name in ("finetune_small", "finetune_full", "step3"))
    assert small.split_sizes(60_000) == full.split_sizes(60_000) == (3_000, 1_000), "the same 3,000 and 1,000"
    assert (small.seeds, small.split_seed, small.threads) == (full.seeds, full.split_seed, full.threads)
    shared = ("model", "model_args", "epochs", "batch_size", "optimizer", "lr", "weight_decay", "scheduler",
              "pct_start", "div_factor", "final_div_factor", "anneal_epochs", "ema")
    assert {key: getattr(small, key) for key in shared} == {key: getattr(step3, key) for key in shared}
    assert not small.augment.enabled and not full.augment.enabled, "unaugmented, as the pretrained network's digits"
