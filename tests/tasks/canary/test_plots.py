import subprocess
import sys

import numpy as np
import pytest

from tasks.canary.plots import (
    calibration_bins,
    calibration_plot,
    latency_histogram,
    roc_plot,
    roc_points,
    slice_delta_plot,
)
from tasks.canary.latency import measure_latency

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path, min_bytes=5_000):
    data = path.read_bytes()
    return data[:8] == PNG_MAGIC and len(data) >= min_bytes


@pytest.fixture(scope="module")
def labeled():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2_000)
    champ = np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.2, len(y)), 0, 1)
    cand = np.clip(0.5 + 0.4 * (y - 0.5) + rng.normal(0, 0.2, len(y)), 0, 1)
    return y, {"candidate": cand, "champion": champ}


def test_importing_does_not_import_matplotlib():
    code = "import sys, tasks.canary.plots; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_roc_and_calibration_plots_write_pngs(labeled, tmp_path):
    y, scores = labeled
    assert _is_png(roc_plot(y, scores, tmp_path / "roc.png"))
    assert _is_png(calibration_plot(y, scores, tmp_path / "plots" / "calibration.png", bins=10))


def test_latency_histogram_from_samples_and_from_a_report(tmp_path):
    rng = np.random.default_rng(1)
    samples = {(m, b): list(rng.gamma(5, b / 1000 * s, 20)) for m, s in (("candidate", 1.2), ("champion", 1.0))
               for b in (64, 1024)}
    assert _is_png(latency_histogram(samples, tmp_path / "latency.png"))
    report = measure_latency({"a": lambda xb: xb.sum(1), "b": lambda xb: xb.mean(1)}, np.ones((8, 3)),
                             buckets=(4, 8), warmup=1, repeats=5)
    assert _is_png(latency_histogram(report, tmp_path / "latency_report.png"))


def test_slice_delta_plot(tmp_path):
    rows = [("overall", -0.002, -0.006, 0.002, "pass"), ("region=north", -0.03, -0.05, -0.01, "fail"),
            ("region=tiny", 0.01, float("nan"), float("nan"), "too small")]
    assert _is_png(slice_delta_plot(rows, tmp_path / "slices.png"))


def test_roc_points_and_calibration_bins_on_known_values():
    fpr, tpr = roc_points(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    assert fpr.tolist() == [0, 0, 0.5, 0.5, 1] and tpr.tolist() == [0, 0.5, 0.5, 1, 1]
    fpr, tpr = roc_points(np.array([0, 1]), np.array([0.5, 0.5]))  # a tie moves both at once
    assert fpr.tolist() == [0, 1] and tpr.tolist() == [0, 1]
    mean_p, rate, n = calibration_bins(np.array([0, 1, 1, 1]), np.array([0.05, 0.15, 0.95, 1.0]), bins=10)
    assert mean_p == pytest.approx([0.05, 0.15, 0.975]) and rate.tolist() == [0, 1, 1] and n.tolist() == [1, 1, 2]


def test_regression_scatter_and_residual_plots(tmp_path):
    from tasks.canary.plots import prediction_scatter_plot, residual_histogram

    rng = np.random.default_rng(2)
    y = rng.normal(0.5, 0.1, 20_000)
    predictions = {"candidate": y + rng.normal(0, 0.05, len(y)), "champion": y + rng.normal(0.01, 0.06, len(y))}
    assert _is_png(prediction_scatter_plot(y, predictions, tmp_path / "scatter.png"))
    assert _is_png(residual_histogram(y, predictions, tmp_path / "residuals.png"))


def test_a_plot_is_drawn_once_for_the_file_with_the_tight_layout_kept(labeled, tmp_path, monkeypatch):
    """_save drops the placeholder layout engine tight_layout leaves (savefig's extra dry-run draw): the same pixels
    as tight_layout then savefig, with one draw of the figure, not two."""
    import matplotlib.image as mpimg
    from matplotlib.figure import Figure

    import tasks.canary.plots as plots

    y, scores = labeled
    made = []
    real_figure = plots._figure

    def counting_figure(*args, **kwargs):
        fig = real_figure(*args, **kwargs)
        made.append(fig)
        return fig

    draws = []
    real_draw = Figure.draw
    monkeypatch.setattr(Figure, "draw", lambda self, renderer: draws.append(self) or real_draw(self, renderer))
    monkeypatch.setattr(plots, "_figure", counting_figure)
    ours = roc_plot(y, scores, tmp_path / "ours.png")
    (fig,) = made
    assert draws == [fig] and fig.get_layout_engine() is None
    monkeypatch.setattr(plots, "_save", lambda f, path: (f.tight_layout(), f.savefig(path, format="png"), path)[-1])
    draws.clear()
    theirs = roc_plot(y, scores, tmp_path / "theirs.png")
    assert len(draws) == 2  # matplotlib's own way: a dry-run draw for the placeholder engine, then the drawing
    assert np.array_equal(mpimg.imread(ours), mpimg.imread(theirs))
