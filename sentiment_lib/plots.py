"""Every figure the notebooks show (matplotlib + seaborn).

Each function takes data (and optionally the matplotlib ``ax`` to draw on), returns the Figure, and never
calls ``plt.show()``. Figures hold no timings or other run-dependent text, so a rerun draws the same figure.
Axes that show metrics always start at 0 and are never capped below the data.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .metrics import roc_points


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """The given axes and its figure, or a new figure of ``figsize`` inches with one axes."""
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


# --- model figures ---


def plot_training_curves(history: pd.DataFrame, axes: Sequence[Axes] | None = None,
                         title: str | None = None) -> Figure:
    """Loss and accuracy per epoch, train vs validation, with the best epoch (lowest validation loss) marked.

    Args:
        history: ``FitResult.history`` (columns ``epoch``, ``train_loss``, ``val_loss``, ``train_accuracy``,
            ``val_accuracy``).
        axes: two axes to draw loss and accuracy on; default a new 1x2 figure.
        title: figure title (e.g. the model's name).
    """
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    else:
        fig = axes[0].figure
    best = int(history.loc[history["val_loss"].idxmin(), "epoch"])
    for ax, metric, label in zip(axes, ("loss", "accuracy"), ("Loss (mean per review)", "Accuracy")):
        ax.plot(history["epoch"], history[f"train_{metric}"], marker="o", label="train")
        ax.plot(history["epoch"], history[f"val_{metric}"], marker="o", label="validation")
        ax.axvline(best, color="grey", linestyle="--", linewidth=1, label=f"best epoch ({best})")
        ax.set_xlabel("Epoch")
        ax.set_ylabel(label)
        ax.set_xticks(history["epoch"])
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(cm: np.ndarray, labels: Sequence[str], ax: Axes | None = None,
                          title: str | None = None) -> Figure:
    """Annotated confusion-matrix heatmap: each cell shows its count and its share of the true class (row %).

    Args:
        cm: (C, C) counts, rows true classes, columns predictions (:func:`sentiment_lib.metrics.confusion`).
        labels: C class names, in the order of ``cm``'s rows.
    """
    cm = np.asarray(cm)
    fig, ax = _axes(ax, (4.8, 4))
    row_totals = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, row_totals, out=np.zeros(cm.shape, dtype=float), where=row_totals > 0)
    annotations = np.array([[f"{cm[i, j]:,}\n{100 * share[i, j]:.1f}%" for j in range(cm.shape[1])]
                            for i in range(cm.shape[0])])
    sns.heatmap(share, annot=annotations, fmt="", cmap="Blues", vmin=0, vmax=1, square=True,
                xticklabels=labels, yticklabels=labels, cbar_kws={"label": "share of true class"}, ax=ax)
    ax.set_xlabel("Predicted")
    ax.set_ylabel("True")
    if title:
        ax.set_title(title)
    return fig


def plot_roc_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]], ax: Axes | None = None,
                    title: str | None = "ROC curves") -> Figure:
    """Overlay ROC curves, one per model, with each AUC in the legend.

    Args:
        curves: ``{name: (y_true (N,) 0/1, prob (N,) probability of class 1)}``.
    """
    fig, ax = _axes(ax, (5, 5))
    for name, (y_true, prob) in curves.items():
        fpr, tpr, auc = roc_points(y_true, prob)
        ax.plot(fpr, tpr, label=f"{name} (AUC = {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance (AUC = 0.5)")
    ax.set_xlabel("False positive rate")
    ax.set_ylabel("True positive rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.legend(loc="lower right")
    if title:
        ax.set_title(title)
    return fig


def plot_grouped_bars(frame: pd.DataFrame, metrics: Sequence[str] | None = None, ax: Axes | None = None,
                      title: str | None = None) -> Figure:
    """Models x metrics as grouped bars, each bar labelled with its value.

    Args:
        frame: one row per model, indexed by model name, one column per metric.
        metrics: the columns to show (default: every numeric column).
    """
    metrics = list(metrics) if metrics is not None else list(frame.select_dtypes("number").columns)
    missing = [m for m in metrics if m not in frame.columns]
    if missing:
        raise ValueError(f"frame has no columns {missing}; it has {list(frame.columns)}.")
    long = (frame[metrics].rename_axis("model").reset_index()
            .melt(id_vars="model", var_name="metric", value_name="value"))
    fig, ax = _axes(ax, (max(6.0, 1.2 * len(frame) * max(1, len(metrics)) ** 0.5 + 2), 4))
    sns.barplot(data=long, x="model", y="value", hue="metric", ax=ax)
    for container in ax.containers:
        ax.bar_label(container, fmt="%.3f", fontsize=7, padding=1)
    top = float(np.nanmax(long["value"])) if len(long) else 1.0
    ax.set_ylim(0, max(1.0, top) * 1.08)  # bars start at 0; room above for the labels
    ax.set_xlabel("")
    ax.set_ylabel("Score")
    ax.legend(title=None, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)  # outside: never on a bar
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_attention_heatmap(tokens: Sequence[str], weights: Sequence[float], ax: Axes | None = None,
                           per_row: int = 12, title: str | None = None) -> Figure:
    """Per-token attention as a heatmap of words, wrapped into rows of ``per_row`` tokens.

    Args:
        tokens: L tokens the model read.
        weights: (L,) attention weights (summing to 1); darker = more attention.
        per_row: tokens per row (12 keeps ~60 tokens readable in 5 rows).
    """
    weights = np.asarray(weights, dtype=float)
    if len(tokens) != len(weights):
        raise ValueError(f"{len(tokens)} tokens but {len(weights)} weights; pass one weight per token.")
    if len(tokens) == 0:
        raise ValueError("No tokens to show: pass a review with at least one word.")
    rows = int(np.ceil(len(tokens) / per_row))
    grid = np.full((rows, per_row), np.nan)
    words = np.full((rows, per_row), "", dtype=object)
    grid.flat[:len(weights)] = weights
    words.flat[:len(tokens)] = list(tokens)
    fig, ax = _axes(ax, (1.15 * per_row, 0.5 * rows + 1.2))
    sns.heatmap(grid, annot=words, fmt="", mask=np.isnan(grid), cmap="Reds", vmin=0, cbar=True,
                cbar_kws={"label": "attention weight"}, xticklabels=False, yticklabels=False,
                linewidths=0.5, linecolor="white", annot_kws={"fontsize": 8, "color": "black"}, ax=ax)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_history_comparison(histories: dict[str, pd.DataFrame], metric: str = "val_accuracy",
                            ax: Axes | None = None, title: str | None = None) -> Figure:
    """One line per model: ``metric`` (default validation accuracy) per epoch.

    Args:
        histories: ``{name: FitResult.history}``.
    """
    fig, ax = _axes(ax, (7, 4))
    for name, history in histories.items():
        ax.plot(history["epoch"], history[metric], marker="o", label=name)
    ax.set_xlabel("Epoch")
    ax.set_ylabel(metric.replace("_", " ").replace("val", "validation"))
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend()
    if title:
        ax.set_title(title)
    return fig


# --- data figures (notebooks 01 and 02) ---

LABEL_PALETTE = {"negative": "#d1495b", "positive": "#00798c", "unlabelled": "#999999"}


def plot_class_balance(frame: pd.DataFrame, by: str = "split", ax: Axes | None = None) -> Figure:
    """Bar chart of reviews per ``by`` group (official split or subset) and label."""
    fig, ax = _axes(ax, (6, 3.5))
    names = {0: "negative", 1: "positive", -1: "unlabelled"}
    counts = frame.assign(label=frame["label"].map(names)).groupby([by, "label"], observed=True).size()
    counts = counts.rename("reviews").reset_index()
    sns.barplot(counts, x=by, y="reviews", hue="label", palette=LABEL_PALETTE, ax=ax)
    for container in ax.containers:
        ax.bar_label(container, fmt="{:,.0f}", fontsize=8)
    ax.set(title="Reviews per class", xlabel=by, ylabel="reviews")
    return fig


def plot_length_distribution(lens: pd.DataFrame, column: str = "words", clip_quantile: float = 0.99,
                             axes: Sequence[Axes] | None = None) -> Figure:
    """Left: histogram of review length by label up to the ``clip_quantile`` (the bulk); right: the
    whole distribution on a log x-axis (the long tail), with the median and 95th percentile marked."""
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    else:
        fig = axes[0].figure
    limit = lens[column].quantile(clip_quantile)
    bulk = lens[lens[column] <= limit]
    sns.histplot(bulk, x=column, hue="label", bins=60, element="step", palette=LABEL_PALETTE, ax=axes[0])
    axes[0].set(title=f"Review length ({column}), up to the {clip_quantile:.0%} quantile", xlabel=column)
    sns.histplot(lens, x=column, bins=80, log_scale=True, color="#555555", ax=axes[1])
    for q, style in ((0.5, "--"), (0.95, ":")):
        value = lens[column].quantile(q)
        axes[1].axvline(value, color="black", linestyle=style, label=f"{q:.0%} quantile: {value:,.0f}")
    axes[1].legend()
    axes[1].set(title=f"All reviews, log scale (max {lens[column].max():,})", xlabel=f"{column} (log)")
    fig.tight_layout()
    return fig


def plot_length_by_class(lens: pd.DataFrame, column: str = "words", ax: Axes | None = None) -> Figure:
    """Box plot of length per label on a log axis (outliers shown)."""
    fig, ax = _axes(ax, (6, 3.5))
    sns.boxplot(lens, x="label", y=column, hue="label", palette=LABEL_PALETTE, log_scale=True,
                fliersize=1, ax=ax)
    ax.set(title=f"Review length ({column}) by class", xlabel="", ylabel=f"{column} (log)")
    return fig


def plot_rating_distribution(ratings: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Reviews per star rating (rows) and split (columns): IMDB's labels leave out 5 and 6 stars."""
    fig, ax = _axes(ax, (7, 3.5))
    long = ratings.reset_index().melt(id_vars="rating", var_name="split", value_name="reviews")
    sns.barplot(long, x="rating", y="reviews", hue="split", ax=ax)
    ax.set(title="Star ratings of the labelled reviews (≤4 negative, ≥7 positive)", xlabel="stars")
    return fig


def plot_top_words(words: pd.DataFrame, value: str = "count", title: str = "Most frequent words") -> Figure:
    """One horizontal bar chart per label from ``eda.top_words``/``eda.distinctive_words`` output."""
    labels = list(dict.fromkeys(words["label"]))
    fig, axes = plt.subplots(1, len(labels), figsize=(4.2 * len(labels), 0.25 * words.groupby("label").size().max() + 1.2))
    axes = np.atleast_1d(axes)
    for ax, label in zip(axes, labels):
        part = words[words["label"] == label]
        ax.barh(part["word"], part[value], color=LABEL_PALETTE.get(label, "#555555"))
        ax.invert_yaxis()
        ax.set(title=f"{label}", xlabel=value)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_truncation(token_lengths: np.ndarray, max_len: int, ax: Axes | None = None) -> Figure:
    """Cumulative share of reviews by token count, with ``max_len`` and the share it cuts marked."""
    fig, ax = _axes(ax, (7, 3.5))
    values = np.sort(np.asarray(token_lengths))
    ax.plot(values, np.arange(1, len(values) + 1) / len(values), color="#00798c")
    cut = float((values > max_len).mean())
    ax.axvline(max_len, color="black", linestyle="--", label=f"MAX_LEN = {max_len}: {cut:.1%} of reviews truncated")
    ax.set(xscale="log", xlabel="tokens per review (log)", ylabel="share of reviews ≤ x",
           title="How much of each review fits in MAX_LEN", ylim=(0, 1.01))
    ax.legend(loc="lower right")
    return fig
