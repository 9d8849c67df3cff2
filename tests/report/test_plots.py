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


def test_roc_curves_put_each_auc_in_the_legend_best_first():
    fig, ax = plt.subplots()
    returned = plots.plot_roc_curves({"lstm": ([1, 0, 1, 1, 0], [0.9, 0.6, 0.4, 0.8, 0.1]),
                                      "perfect": ([0, 1], [0.2, 0.9])}, ax=ax)
    assert returned is fig
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["perfect (AUC 1.000)", "lstm (AUC 0.833)", "chance (AUC 0.5)"]


def test_the_attention_heatmap_carries_its_caveat_and_long_labels_wrap():
    fig = plots.plot_attention_heatmap(["a", "superlongwordthatwouldoverflow"], [0.25, 0.75])
    assert any("not why it decided" in t.get_text() for t in fig.texts)
    assert "superlongwo…" in texts(fig)
    table = pd.DataFrame({"accuracy": [0.9], "accuracy_low": [0.89], "accuracy_high": [0.91]},
                         index=["attention_lstm 64 (language-model start + AT) + nbsvm (0.55 / 0.45)"])
    label = plots.plot_accuracy_intervals(table).axes[0].get_yticklabels()[0].get_text()
    assert "\n" in label and max(len(line) for line in label.splitlines()) <= 34


def test_accuracy_intervals_span_the_data_not_zero_and_mark_the_references():
    table = pd.DataFrame({"accuracy": [0.88, 0.80, 0.89], "accuracy_low": [0.87, 0.79, 0.885],
                          "accuracy_high": [0.89, 0.81, 0.895]}, index=["lstm", "rnn", "tfidf_logreg"])
    fig = plots.plot_accuracy_intervals(table, references=["tfidf_logreg"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["rnn", "lstm", "tfidf_logreg"]  # best at the top
    low, high = ax.get_xlim()
    assert 0.75 < low < 0.79 and 0.895 < high < 0.95  # the spread is visible: no axis from 0
    assert {"0.8800", "0.8000", "0.8900"} <= set(texts(fig))
    assert "linear reference" in texts(fig)
    with pytest.raises(ValueError, match="with_intervals"):
        plots.plot_accuracy_intervals(table[["accuracy"]])


def test_history_grid_draws_one_panel_per_model_with_each_series():
    histories = {"lstm": HISTORY, "gru": HISTORY.assign(val_loss=[0.5, 0.4, 0.35]), "rnn": HISTORY}
    fig = plots.plot_history_grid(histories, [("train_loss", "val_loss")], labels=["train", "validation"], columns=2)
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in shown] == ["lstm", "gru", "rnn"]
    assert all(len(ax.get_lines()) == 3 for ax in shown)  # train, validation, the kept epoch
    assert shown[1].get_lines()[2].get_xdata()[0] == 3  # gru's lowest validation loss is at epoch 3
    with pytest.raises(ValueError, match="No histories"):
        plots.plot_history_grid({})


def test_an_optuna_figure_does_not_leak_its_style():
    before = plt.rcParams["axes.facecolor"]

    def draws_in_ggplot():
        plt.style.use("ggplot")
        return plt.subplots()[1]

    fig = plots.optuna_figure(draws_in_ggplot, size=(4, 2))
    assert plt.rcParams["axes.facecolor"] == before
    assert tuple(fig.get_size_inches()) == (4, 2)


def test_an_optuna_figure_labels_a_log_axis_within_one_decade_in_plain_numbers():
    def learning_rates_on_a_log_axis():
        ax = plt.subplots()[1]
        ax.scatter([0.002, 0.003, 0.0045, 0.006], [0.3, 0.2, 0.25, 0.4])
        ax.set_xscale("log")
        return ax

    fig = plots.optuna_figure(learning_rates_on_a_log_axis, size=(3.5, 3.5))
    fig.canvas.draw()
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels(minor=True) if t.get_text() and t.get_visible()]
    assert "0.003" in labels and not any("10^" in label or "times" in label for label in labels)
    assert ax.get_xticklabels(minor=True)[0].get_rotation() == 45


def test_attention_heatmap_text_is_readable_on_dark_cells():
    fig = plots.plot_attention_heatmap(["dull", "great"], [0.05, 0.95], per_row=2)
    colours = {t.get_text(): matplotlib.colors.to_hex(t.get_color()) for t in fig.axes[0].texts if t.get_text()}
    assert colours["great"] != colours["dull"]  # light text on the darkest cell, dark text on the lightest


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
