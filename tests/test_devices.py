"""What the code does for the device it computes on, checked on any machine: the choices it makes from what torch
reports of a GPU (stood in for here, where there may be none), the settings a seeded run leaves behind, and the
precision a checkpoint computes in on a machine other than the one that trained it."""
import time

import pytest
import torch

from mnist_utils import precision
from mnist_utils.config import generators_kept, synchronize
from mnist_utils.engine import seed_everything
from mnist_utils.precision import bf16_native, precision_for


@pytest.mark.parametrize("capability, native", [((7, 5), False), ((8, 0), True), ((9, 0), True)])
def test_bf16_is_native_from_ampere_on_not_where_torch_only_emulates_it(monkeypatch, capability, native):
    """torch calls bf16 supported on a T4 or V100 (compute capability 7.x), which emulates it slower than float32:
    a recipe asking for bf16 keeps float32 there."""
    asked = []
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device: asked.append(device) or capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)  # as torch says of any of them
    device = torch.device("cuda:1")
    assert bf16_native(device) is native and asked == [device], "the capability of the GPU the run computes on"
    assert precision_for(True, device) == ("bfloat16" if native else "float32")


def test_training_and_testing_a_checkpoint_set_cudnn_to_the_same_kernels_every_time_in_float32(monkeypatch, tmp_path):
    """cuDNN's defaults allow kernels that add up in no fixed order and float32 convolutions in TF32 (a 10-bit
    mantissa), and a caller may have had it time candidates to pick one: a seeded run takes each choice away, and so
    does loading a checkpoint to test it or answer with it, so that it computes as it trained."""
    from mnist_utils.checkpoints import save_checkpoint
    from mnist_utils.classifier import Classifier
    from models import Model_1

    save_checkpoint(Model_1(), tmp_path / "m", model_name="Model_1")
    for start in (lambda: seed_everything(3), lambda: Classifier.load(tmp_path / "m")):
        for flag, value in (("benchmark", True), ("deterministic", False), ("allow_tf32", True)):
            monkeypatch.setattr(torch.backends.cudnn, flag, value)
        start()
        assert torch.backends.cudnn.benchmark is False and torch.backends.cudnn.deterministic is True
        assert torch.backends.cudnn.allow_tf32 is False


def test_generators_kept_leaves_the_cpus_generator_as_it_was_and_forks_every_gpus(monkeypatch):
    """Draws and reseeding inside the block leave the draws after it as they would have been; on a GPU every GPU's
    generator is forked, since torch.manual_seed reseeds them all, not only the one computing."""
    torch.manual_seed(3)
    expected = torch.rand(2)
    torch.manual_seed(3)
    with generators_kept(torch.device("cpu")):
        torch.manual_seed(0)
        torch.rand(5)
    assert torch.equal(torch.rand(2), expected)
    forked = []
    monkeypatch.setattr(torch.random, "fork_rng", lambda devices: forked.append(list(devices)))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    generators_kept(torch.device("cuda:1"))
    generators_kept(torch.device("cpu"))
    assert forked == [[0, 1], []]


def test_synchronize_waits_for_a_gpu_and_a_probes_clock_is_read_after_it(monkeypatch, mnist):
    """A GPU computes asynchronously: a clock read without waiting times the queueing, not the computing."""
    from mnist_utils import features
    from mnist_utils.batches import Batches

    waited = []
    monkeypatch.setattr(torch.cuda, "synchronize", waited.append)
    synchronize(torch.device("cpu"))
    synchronize(torch.device("cuda:0"))
    assert waited == [torch.device("cuda:0")]
    events = []
    monkeypatch.setattr(features, "synchronize", lambda device: events.append(("synchronize", device)))
    monkeypatch.setattr(features.time, "perf_counter", lambda: events.append("clock") or float(len(events)))
    cpu = torch.device("cpu")
    features.linear_probe(torch.nn.Flatten(), Batches(mnist.train.head(64), 32), Batches(mnist.test.head(32), 32),
                          cpu, epochs=1)
    assert events[:3] == ["clock", ("synchronize", cpu), "clock"], "the features' seconds end when they are done"


def test_a_checkpoint_computes_in_the_precision_it_trained_in_wherever_it_is_loaded(tmp_path, monkeypatch):
    """A bf16 config trained on a processor without bf16 trained (and was tested) in float32: loaded where bf16 is
    native, it computes in float32 still, so that it scores its recorded accuracy. A checkpoint that records no
    precision (saved before it was recorded) goes by its config."""
    from mnist_utils import checkpoints
    from mnist_utils.checkpoints import recipe_fields, save_checkpoint, save_trained
    from mnist_utils.classifier import Classifier
    from mnist_utils.recipes import load_config

    recipe, cpu = load_config("cnn_simple"), torch.device("cpu")  # bf16: true
    monkeypatch.setattr(precision, "bf16_native", lambda device: False)  # the machine it trains on
    fields = recipe_fields(recipe, cpu)
    model = checkpoints.rebuild_model(fields["model_name"], fields["model_args"])
    save_checkpoint(model, tmp_path / "float32", **fields)
    save_checkpoint(model, tmp_path / "unrecorded", **{**fields, "precision": None})
    saved = save_trained(model, recipe, seed=1, test_acc=99.0, epochs=1, notebook="06", directory=tmp_path / "models")
    assert [Classifier.load(tmp_path / path).metadata["precision"] for path in ("float32", saved)] == ["float32"] * 2
    monkeypatch.setattr(precision, "bf16_native", lambda device: True)  # the machine it is loaded on
    assert Classifier.load(tmp_path / "float32").precision == "float32"
    assert Classifier.load(tmp_path / "unrecorded").precision == "bfloat16"
    assert recipe_fields(recipe, cpu)["precision"] == "bfloat16", "trained here, it would train in bf16"
    save_trained(model, recipe, seed=2, test_acc=99.0, epochs=1, notebook="06", directory=tmp_path / "models")
    assert Classifier.load(tmp_path / "models" / "cnn_simple-seed2").metadata["precision"] == "bfloat16"


def test_a_checkpoint_records_the_precision_of_the_device_it_trained_on(tmp_path, monkeypatch):
    """The precision is the device's that trained it, not the CPU's: a bf16 config trained on a GPU with bf16
    records bfloat16 even where the processor has none (as save_trained finds it: on the notebook's device)."""
    import json

    from mnist_utils import checkpoints
    from mnist_utils.checkpoints import recipe_fields, save_trained
    from mnist_utils.recipes import load_config

    recipe, gpu, cpu = load_config("cnn_simple"), torch.device("cuda:0"), torch.device("cpu")  # bf16: true
    monkeypatch.setattr(precision, "bf16_native", lambda device: device.type == "cuda")  # a GPU with it, a CPU without
    assert [recipe_fields(recipe, device)["precision"] for device in (gpu, cpu)] == ["bfloat16", "float32"]
    fields = recipe_fields(recipe, cpu)
    model = checkpoints.rebuild_model(fields["model_name"], fields["model_args"])  # on the CPU, as packed seeds return
    monkeypatch.setattr(checkpoints, "get_device", lambda *args: gpu)  # the notebook's device
    saved = save_trained(model, recipe, seed=1, test_acc=99.0, epochs=1, notebook="06", directory=tmp_path / "models")
    assert json.loads((tmp_path / saved).with_suffix(".json").read_text())["precision"] == "bfloat16"


def test_a_training_speed_and_a_feature_pass_read_their_clocks_after_the_gpus_work(monkeypatch, mnist):
    """As the probe above: the speed a notebook measures, and the seconds a frozen backbone's features take."""
    from collections import OrderedDict

    from mnist_utils import inspection, training
    from mnist_utils.data import MNIST
    from mnist_utils.recipes import Recipe

    events = []
    for module in (inspection, training):
        monkeypatch.setattr(module, "synchronize", lambda device: events.append("synchronize"))
    monkeypatch.setattr(time, "perf_counter", lambda: events.append("clock") or float(len(events)))
    monkeypatch.setattr(inspection, "training_step", lambda *args: events.append("step"))
    inspection.training_speed(torch.nn.Linear(4, 2), torch.randn(8, 4), torch.randint(0, 2, (8,)),
                              torch.device("cpu"), steps=1, repeats=1, warmup=0)
    assert events == ["synchronize", "clock", "step", "synchronize", "clock"]
    events.clear()
    backbone = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten())
    model = torch.nn.Sequential(OrderedDict(backbone=backbone, head=torch.nn.Linear(8, 10)))
    recipe = Recipe(model="pretrained", model_args={"family": "efficientnet-lite0"}, freeze_backbone=True,
                    epochs=1, batch_size=32)
    monkeypatch.setattr(training, "_fit_recipe", lambda *args, **kwargs: events.append("fit"))
    training.train_head(model, recipe, MNIST(mnist.train.head(64), mnist.test.head(32)), torch.device("cpu"), seed=0,
                        progress=None)
    assert events[:3] == ["clock", "synchronize", "clock"], "the features' seconds end when they are done"
