"""The notebooks' face: the helpers they call, grouped by what a learner does, each group saying where its
code lives. Nothing is defined here; read the module a group names to see how a helper works.

    from models import Model_1
    from utils import get_device, load_config, load_data, run_recipe, plot_history

    recipe = load_config("step1")                     # configs/step1.yaml: model, epochs, optimizer, ...
    model, history = run_recipe(recipe, load_data(), get_device())
    plot_history(history)

Helpers take what they work on as arguments (model, batches, optimizer, device), in the manner of
PyTorch's own MNIST example; none keeps global state, except the two a notebook calls once to set up its
kernel: `seed_everything` (torch's generators, cuDNN's choices) and `use_threads` (torch's thread count).
"""
# Set up: the profile (full or smoke), the device, the data as tensors, seeds.
# mnist_utils/config.py, mnist_utils/data.py, mnist_utils/engine.py
from mnist_utils.config import budget_minutes, counted, get_device, get_profile, use_threads
from mnist_utils.data import MNIST_MEAN, MNIST_STD, load_data, load_mnist, normalization_stats
from mnist_utils.engine import seed_everything

# Look at the data: class balance, duplicates, samples, pixel statistics, augmentation.
# mnist_utils/exploration.py, mnist_utils/plots.py
from mnist_utils.exploration import class_counts, count_repeats, exact_duplicates, split_facts
from mnist_utils.plots import (plot_augmentation, plot_class_counts, plot_mean_images, plot_pixel_histogram,
                               plot_samples)

# Look inside a model: parameters, layers, receptive fields, speed.
# mnist_utils/inspection.py
from mnist_utils.inspection import (bf16_claim, channels_last_claim, count_parameters, feature_map_size,
                                    last_convolution_field, last_layer, receptive_field, smallest_input_size,
                                    speed_probe, speed_table, summary, training_speed)

# Train: a recipe from configs/, the explicit epoch loop (train, test), fit, several recipes or seeds at once
# (in lanes, one per core), searches.
# mnist_utils/recipes.py, mnist_utils/engine.py, mnist_utils/optim.py, mnist_utils/training.py,
# mnist_utils/lanes.py, mnist_utils/batches.py, mnist_utils/search.py
from mnist_utils.batches import Batches
from mnist_utils.engine import History, fit, test, train
from mnist_utils.optim import make_optimizer, make_scheduler
from mnist_utils.recipes import Recipe, build_model, load_config
from mnist_utils.training import (check_plain_loop, run_recipe, run_recipes, train_head, train_model, train_recipe,
                                  train_seeds)
from mnist_utils.search import changes_from, held_on_every_seed, recorded_candidates, recorded_run, search_table
from mnist_utils.plots import plot_history, plot_schedule, plot_test_accuracy

# Evaluate: predictions, confusions, per-class metrics, how a run went.
# mnist_utils/evaluation.py, mnist_utils/plots.py
from mnist_utils.evaluation import (GAP_TOLERANCE, GOAL_ACC, LEAN_SE, RUN_SUMMARY_LABELS, STEP_GOAL, accuracy_se,
                                    accuracy_with_dropout, clean_epochs_effect, confusion_matrix,
                                    fitting_diagnosis, per_class_metrics, predict, probed_gap, run_summary, seed_table,
                                    test_acc_spread, top_confusions)
from mnist_utils.plots import plot_confusion, plot_misclassified, plot_per_class

# Compare models: paired tests, shared errors, ensembles.
# mnist_utils/evaluation.py, mnist_utils/ensembles.py, mnist_utils/plots.py
from mnist_utils.evaluation import confused_pairs, ensemble, head_to_head, mcnemar, with_tta
from mnist_utils.ensembles import (choice_on_halves, choose_on, halves_summary, most_shared, shared_errors,
                                   wrong_by_all, wrong_by_any)
from mnist_utils.plots import plot_hard_images, plot_shared_errors

# Pretrained networks and frozen features.
# mnist_utils/pretrained.py, mnist_utils/recipes.py, mnist_utils/features.py
from mnist_utils.features import resolution_sweep
from mnist_utils.pretrained import resnet18_weights_available, stem_conversion_error
from mnist_utils.recipes import build_pretrained

# Keep a trained model: a checkpoint in reports/models that `python -m mnist_utils test` and the web page load.
# mnist_utils/checkpoints.py (mnist_utils/classifier.py reads digits with one)
from mnist_utils.checkpoints import load_model, save_and_record, save_trained

# Report: targets, the Result and Analysis blocks, checked claims, results files.
# mnist_utils/report.py, mnist_utils/results.py
from mnist_utils.report import Report, points_against, show_config, show_configs, show_markdown, show_table
from mnist_utils.results import load_result

__all__ = [
    "budget_minutes", "counted", "get_device", "get_profile", "use_threads", "MNIST_MEAN", "MNIST_STD", "load_data",
    "load_mnist", "normalization_stats", "seed_everything",
    "class_counts", "count_repeats", "exact_duplicates", "split_facts", "plot_augmentation", "plot_class_counts",
    "plot_mean_images", "plot_pixel_histogram", "plot_samples",
    "bf16_claim", "channels_last_claim", "count_parameters", "feature_map_size", "last_convolution_field",
    "last_layer", "receptive_field",
    "smallest_input_size", "speed_probe", "speed_table", "summary", "training_speed",
    "Batches", "History", "fit", "make_optimizer", "make_scheduler", "test", "train", "Recipe", "build_model",
    "load_config", "show_config", "show_configs",
    "changes_from", "check_plain_loop", "run_recipe", "run_recipes", "train_model", "train_recipe", "train_seeds",
    "held_on_every_seed",
    "recorded_candidates", "recorded_run", "search_table", "plot_history", "plot_schedule", "plot_test_accuracy",
    "GAP_TOLERANCE", "GOAL_ACC", "LEAN_SE", "RUN_SUMMARY_LABELS", "STEP_GOAL", "accuracy_se",
    "accuracy_with_dropout", "clean_epochs_effect", "confusion_matrix", "fitting_diagnosis", "per_class_metrics",
    "predict", "probed_gap", "run_summary",
    "seed_table", "test_acc_spread", "top_confusions", "plot_confusion", "plot_misclassified", "plot_per_class",
    "choice_on_halves", "choose_on", "confused_pairs", "ensemble", "halves_summary", "head_to_head", "mcnemar",
    "most_shared", "shared_errors", "with_tta", "wrong_by_all", "wrong_by_any",
    "plot_hard_images", "plot_shared_errors",
    "resolution_sweep", "train_head", "resnet18_weights_available",
    "stem_conversion_error", "build_pretrained",
    "load_model", "save_and_record", "save_trained",
    "Report", "load_result", "points_against", "show_markdown", "show_table",
]
