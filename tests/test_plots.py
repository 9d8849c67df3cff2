"""Figures: each returns a Figure, draws on a given axes, shows what it claims, and is deterministic."""
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from sentiment_lib import plots  # noqa: E402

HISTORY = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [0.6, 0.4, 0.3], "val_loss": [0.55, 0.45, 0.5],
                        "train_accuracy": [0.7, 0.8, 0.9], "val_accuracy": [0.72, 0.81, 0.8]})


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts] + \
           [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


def test_training_curves_mark_the_best_epoch():
    fig = plots.plot_training_curves(HISTORY, title="lstm")
    assert len(fig.axes) == 2
    assert "best epoch (2)" in texts(fig)


def test_training_curves_are_deterministic():
    images = []
    for _ in range(2):
        buffer = io.BytesIO()
        plots.plot_training_curves(HISTORY).savefig(buffer, format="png", metadata={"Software": None})
        images.append(buffer.getvalue())
    assert images[0] == images[1]


def test_confusion_matrix_shows_counts_and_row_percentages():
    fig = plots.plot_confusion_matrix(np.array([[40, 10], [5, 45]]), ["negative", "positive"])
    assert {"40\n80.0%", "10\n20.0%", "5\n10.0%", "45\n90.0%"} <= set(texts(fig))


def test_roc_curves_put_each_auc_in_the_legend():
    fig, ax = plt.subplots()
    returned = plots.plot_roc_curves({"lstm": ([1, 0, 1, 1, 0], [0.9, 0.6, 0.4, 0.8, 0.1]),
                                      "perfect": ([0, 1], [0.2, 0.9])}, ax=ax)
    assert returned is fig
    assert {"lstm (AUC = 0.833)", "perfect (AUC = 1.000)"} <= set(texts(fig))


def test_grouped_bars_start_at_zero_and_are_not_capped():
    frame = pd.DataFrame({"accuracy": [0.88, 0.95], "f1": [0.87, 0.96], "seconds": [10.0, 20.0]},
                         index=["lstm", "bilstm"])
    fig = plots.plot_grouped_bars(frame, metrics=["accuracy", "f1"])
    ax = fig.axes[0]
    assert ax.get_ylim()[0] == 0 and ax.get_ylim()[1] >= 0.96
    heights = sorted(round(p.get_height(), 2) for p in ax.patches if p.get_height() > 0)
    assert heights == [0.87, 0.88, 0.95, 0.96]
    with pytest.raises(ValueError, match="no columns"):
        plots.plot_grouped_bars(frame, metrics=["auc"])


def test_attention_heatmap_wraps_sixty_tokens_into_rows():
    tokens = [f"w{i}" for i in range(60)]
    weights = np.full(60, 1 / 60)
    fig = plots.plot_attention_heatmap(tokens, weights, per_row=12)
    shown = [t for t in texts(fig) if t]
    assert shown == tokens
    assert fig.axes[0].get_ylim() == (5.0, 0.0)  # 5 rows of 12
    with pytest.raises(ValueError, match="one weight per token"):
        plots.plot_attention_heatmap(tokens, weights[:5])


def test_history_comparison_draws_one_line_per_model():
    fig = plots.plot_history_comparison({"lstm": HISTORY, "gru": HISTORY.assign(val_accuracy=[0.6, 0.7, 0.75])})
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["lstm", "gru"]
    assert fig.axes[0].get_ylabel() == "validation accuracy"
