"""The API benchmark: a --quick run end to end against a real server process. No assertion is about speed:
these check that the figures are measured, kept and printed consistently."""
import json

import pytest

from mnist_utils import app_bench
from mnist_utils.commands import UsageError


def test_quick_run_measures_through_a_real_server_and_reports_every_figure(step3_checkpoint, tmp_path, monkeypatch,
                                                                          capsys):
    monkeypatch.setenv("MNIST_REPORTS_DIR", str(tmp_path))
    monkeypatch.setenv("MNIST_PROFILE", "full")
    (tmp_path / "bench_app.json").write_text("{}\n")  # a whole run's figures: a quick check leaves them alone
    assert app_bench.main(["--quick", "--models", str(step3_checkpoint.parent)]) == 0
    printed = capsys.readouterr().out
    path = tmp_path / "smoke" / "bench_app.json"
    assert f"Figures in {path}" in printed and (tmp_path / "bench_app.json").read_text() == "{}\n"
    results = json.loads(path.read_text())
    one, many = results["sequential"], results["concurrent"]
    assert one["requests"] == app_bench.QUICK.requests and one["errors"] == 0
    assert 0 < one["milliseconds"]["p50"] <= one["milliseconds"]["p95"] <= one["milliseconds"]["max"]
    latency = one["milliseconds"]
    assert f"p50 {latency['p50']:.1f} ms" in printed and f"p95 {latency['p95']:.1f} ms" in printed
    assert many["clients"] == app_bench.QUICK.clients and many["requests"] > 0 and many["errors"] == 0
    assert f"{many['requests']:,} answers, 0 errors" in printed
    assert results["met"]["no_errors"] and results["quick"] and results["machine"]["usable_cpus"] >= 1


def test_percentiles_interpolate_between_ranks():
    values = [float(v) for v in range(1, 101)]
    assert app_bench.percentile(values, 0.5) == pytest.approx(50.5)
    assert app_bench.percentile(values, 0.95) == pytest.approx(95.05)
    assert app_bench.percentile([3.0], 0.95) == 3.0


def test_without_a_saved_model_it_says_how_to_get_one(tmp_path, capsys):
    assert app_bench.main(["--quick", "--models", str(tmp_path)]) == 2
    assert "make app" in capsys.readouterr().err


def test_figures_that_could_not_be_written_are_refused_before_the_server_starts(tmp_path, capsys):
    with pytest.raises(UsageError, match=f"the figures cannot be written: {tmp_path} is a folder, not a file."):
        app_bench.main(["--quick", "--models", str(tmp_path), "--json", str(tmp_path)])
    assert "Serving" not in capsys.readouterr().out
