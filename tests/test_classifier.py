"""A saved model read back to classify digits (mnist_utils/classifier.py): its images prepared, and its arithmetic
done, as it was tested when it was saved."""
import torch

from mnist_utils.checkpoints import read_metadata, rebuild_model, recipe_fields, save_checkpoint, save_trained
from mnist_utils.classifier import Classifier, input_batches
from mnist_utils.data import MNIST_MEAN, MNIST_STD, ImageSet
from mnist_utils.recipes import load_config
from models import Model_1, SimpleCNN
from weights import trained_like


def test_a_checkpoints_digits_are_prepared_as_it_says(tmp_path):
    # a fine-tuned backbone's own input size and scaling, not MNIST's 28 px and statistics: what `test`, `predict`
    # and the page feed it (Classifier.predict takes its batches from input_batches)
    recipe = load_config("finetune_full").replace(model_args={"family": "efficientnet-lite0"}, image_size=32)
    fields = recipe_fields(recipe, torch.device("cpu"))
    model = rebuild_model(fields["model_name"], fields["model_args"], fields["input_size"])
    save_checkpoint(model, tmp_path / "e", **fields)
    pixels = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    resized = torch.nn.functional.interpolate(pixels.unsqueeze(1).float() / 255, size=(32, 32), mode="bilinear",
                                              align_corners=False)
    images = ImageSet(pixels, torch.zeros(4, dtype=torch.long))
    batch, _ = next(iter(input_batches(images, read_metadata(tmp_path / "e"))))
    assert (fields["mean"], fields["std"]) != (MNIST_MEAN, MNIST_STD)
    assert torch.allclose(batch, (resized - fields["mean"]) / fields["std"], atol=1e-6)


def test_a_loaded_model_computes_in_the_precision_it_trained_in(tmp_path, monkeypatch, mnist):
    """A checkpoint of a bf16 recipe scores with bf16 arithmetic where the device has it, as its training
    validated and tested it, so `test` and the page reproduce its recorded accuracy; float32 elsewhere."""
    from mnist_utils import precision
    from mnist_utils.precision import Autocast
    from mnist_utils.evaluation import predict

    model = trained_like(Model_1())
    for name, bf16 in (("bf16", True), ("fp32", False)):
        save_checkpoint(model, tmp_path / name, model_name="Model_1", config={"bf16": bf16})
    images, cpu = mnist.test.head(64), torch.device("cpu")
    monkeypatch.setattr(precision, "bf16_native", lambda device: True)
    bf16, fp32 = Classifier.load(tmp_path / "bf16"), Classifier.load(tmp_path / "fp32")
    assert (bf16.precision, fp32.precision) == ("bfloat16", "float32")
    batches = input_batches(images, bf16.metadata)
    expected = predict(Autocast(bf16.model, torch.bfloat16, "cpu"), batches, cpu).probabilities
    assert torch.equal(bf16.predict(images).probabilities, expected)
    assert torch.equal(fp32.predict(images).probabilities, predict(fp32.model, batches, cpu).probabilities)
    assert not torch.equal(expected, predict(bf16.model, batches, cpu).probabilities), "bf16 computes otherwise"
    monkeypatch.setattr(precision, "bf16_native", lambda device: False)
    assert bf16.precision == "float32", "emulated bf16 is slower: float32 there"


def test_the_test_command_reproduces_a_notebooks_figure_of_a_bf16_model(tmp_path, monkeypatch, mnist):
    """A notebook tests a bf16 model with its recipe's batches (channels_last, eval_batch_size) under autocast;
    the checkpoint it saves, reloaded, computes the very same probabilities."""
    from mnist_utils import precision
    from mnist_utils.evaluation import predict

    monkeypatch.setattr(precision, "bf16_native", lambda device: True)
    cpu, images = torch.device("cpu"), mnist.test.head(120)
    recipe = load_config("cnn_simple").replace(eval_batch_size=50)  # bf16, channels_last, batches of 50
    model = trained_like(SimpleCNN()).to(memory_format=torch.channels_last)
    in_notebook = predict(recipe.computing(model, cpu), recipe.eval_batches(images, cpu), cpu)
    save_trained(model, recipe, seed=6, test_acc=in_notebook.accuracy, epochs=1, notebook="06_cnn_comparison",
                 directory=tmp_path / "models")
    reloaded = Classifier.load(tmp_path / "models" / "cnn_simple-seed6")
    assert torch.equal(reloaded.predict(images).probabilities, in_notebook.probabilities)
