"""Every figure the notebooks show (matplotlib + seaborn).

Each function takes data (and optionally the matplotlib ``ax`` to draw on), returns the Figure, and never
calls ``plt.show()``. Figures hold no timings or other run-dependent text, so a rerun draws the same figure.
Metrics are never capped below the data; a comparison of models is a dot plot with 95% intervals, whose axis
spans the data (a bar chart would have to start at 0 and hide a spread of a few points).
"""
from __future__ import annotations

import textwrap

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.transforms import ScaledTranslation

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
    """ROC curves, one per model, the legend ordered by AUC (best first), with an inset on the corner where
    good models differ (false positive rate ≤ 0.3, true positive rate ≥ 0.7).

    Args:
        curves: ``{name: (y_true (N,) 0/1, prob (N,) probability of class 1)}``; a few models carry a message,
            a dozen overlapping curves do not.
    """
    fig, ax = _axes(ax, (6.5, 6))
    drawn = sorted(((name, *roc_points(y, p)) for name, (y, p) in curves.items()), key=lambda r: -r[3])
    inset = ax.inset_axes([0.42, 0.12, 0.5, 0.45])
    for name, fpr, tpr, auc in drawn:
        line, = ax.plot(fpr, tpr, label=f"{textwrap.shorten(name, 40)} (AUC {auc:.3f})")
        inset.plot(fpr, tpr, color=line.get_color())
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance (AUC 0.5)")
    inset.set_xlim(0, 0.3)
    inset.set_ylim(0.7, 1)
    inset.set_title("the corner where they differ", fontsize=8)
    inset.tick_params(labelsize=7)
    ax.indicate_inset_zoom(inset, edgecolor="grey")
    ax.set_xlabel("False positive rate")
    ax.set_ylabel("True positive rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=1, fontsize=8, frameon=False)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_attention_heatmap(tokens: Sequence[str], weights: Sequence[float], ax: Axes | None = None,
                           per_row: int = 10, title: str | None = None) -> Figure:
    """Per-token attention as a heatmap of words, wrapped into rows of ``per_row`` tokens, with the caveat
    that belongs under every such figure: attention shows where the model looked, not why it decided.

    Args:
        tokens: L tokens the model read.
        weights: (L,) attention weights (summing to 1); darker = more attention.
        per_row: tokens per row (10 keeps the words legible at a page's width).
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
    words.flat[:len(tokens)] = [token if len(token) <= 12 else token[:11] + "…" for token in tokens]
    fig, ax = _axes(ax, (1.05 * per_row + 1.5, 0.55 * rows + 1.4))
    sns.heatmap(grid, annot=words, fmt="", mask=np.isnan(grid), cmap="Reds", vmin=0, cbar=True,
                cbar_kws={"label": "attention weight"}, xticklabels=False, yticklabels=False,
                linewidths=0.5, linecolor="white", annot_kws={"fontsize": 11}, ax=ax)  # text colour follows the cell
    if title:
        ax.set_title(title)
    fig.text(0.01, 0.01, "Attention weights show where the model looked, not why it decided.", fontsize=9,
             style="italic", color="#555")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
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


def plot_accuracy_intervals(table: pd.DataFrame, ax: Axes | None = None, title: str | None = None,
                            references: Sequence[str] = ()) -> Figure:
    """Test accuracy per model as a dot with its 95% interval, best at the top, one row per model.

    Args:
        table: one row per model, indexed by name, with ``accuracy``, ``accuracy_low`` and ``accuracy_high``
            (:func:`sentiment_lib.uncertainty.with_intervals`).
        references: names of rows drawn as references (linear models), in another colour.

    A dot plot rather than bars: the axis spans the data and its intervals (a bar would have to start at 0 and
    hide a spread of a few points), and overlapping intervals are visible at a glance.
    """
    needed = {"accuracy", "accuracy_low", "accuracy_high"}
    if not needed <= set(table.columns):
        raise ValueError(f"table needs columns {sorted(needed)} (uncertainty.with_intervals adds them); "
                         f"it has {list(table.columns)}.")
    rows = table.sort_values("accuracy")
    labels = [textwrap.fill(str(name), 34) for name in rows.index]  # long model names wrap, never squeeze the axes
    height = 0.3 * sum(label.count("\n") + 1 for label in labels) + 0.25 * len(labels) + 1.5
    fig, ax = _axes(ax, (9, height))
    y = np.arange(len(rows))
    colours = ["#b56576" if name in references else "#1d3557" for name in rows.index]
    ax.hlines(y, rows["accuracy_low"], rows["accuracy_high"], colors=colours, linewidth=2.5, alpha=0.6)
    ax.scatter(rows["accuracy"], y, color=colours, zorder=3, s=36)
    for yi, (low, acc, high) in zip(y, rows[["accuracy_low", "accuracy", "accuracy_high"]].to_numpy()):
        ax.annotate(f"{acc:.4f}", (high, yi), xytext=(6, 0), textcoords="offset points", va="center", fontsize=9)
    ax.set_yticks(y, labels, fontsize=9)
    span = float(rows["accuracy_high"].max() - rows["accuracy_low"].min())
    ax.set_xlim(float(rows["accuracy_low"].min()) - 0.05 * span, float(rows["accuracy_high"].max()) + 0.22 * span)
    ax.set_xlabel("Test accuracy (dot) and its 95% interval (line)")
    ax.grid(axis="x", alpha=0.3)
    if references:  # below the axes: a legend inside would hide dots and values
        ax.scatter([], [], color="#b56576", label="linear reference")
        ax.scatter([], [], color="#1d3557", label="network")
        below_label = ax.transAxes + ScaledTranslation(0, -0.5, fig.dpi_scale_trans)  # 0.5 inch under the axes
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0), bbox_transform=below_label, ncol=2, fontsize=9,
                  frameon=False)
    if title:
        ax.set_title(textwrap.fill(title, 70))
    fig.tight_layout()
    return fig


def plot_history_grid(histories: dict[str, pd.DataFrame], pairs: Sequence[tuple[str, str]] = (
        ("train_loss", "val_loss"),), labels: Sequence[str] | None = None, columns: int = 4,
        title: str | None = None, ylabel: str = "Loss (mean per review)") -> Figure:
    """Small multiples: one panel per model, each the columns of ``pairs`` per epoch (shared y axis).

    Args:
        histories: ``{name: FitResult.history}``.
        pairs: groups of history columns drawn together in each panel, e.g. ``(("train_loss", "val_loss"),)``
            or ``(("val_precision", "val_recall", "val_f1"),)``.
        labels: legend labels for the columns (default: the column names without ``val_``).
    """
    names = list(histories)
    if not names:
        raise ValueError("No histories to draw: pass {model name: FitResult.history}.")
    columns = min(columns, len(names))
    rows = int(np.ceil(len(names) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.5 * rows + 0.6), sharey=True, squeeze=False)
    keys = [key for group in pairs for key in group]
    shown = list(labels) if labels is not None else [k.replace("val_", "validation ").replace("_", " ") for k in keys]
    for ax, name in zip(axes.flat, names):
        history = histories[name]
        for key, label in zip(keys, shown):
            ax.plot(history["epoch"], history[key], marker="o", markersize=3, label=label)
        best = int(history.loc[history["val_loss"].idxmin(), "epoch"])
        ax.axvline(best, color="grey", linestyle="--", linewidth=0.8)
        ax.set_title(name, fontsize=10)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel, fontsize=9)
    handles, texts = axes.flat[0].get_legend_handles_labels()
    height = fig.get_figheight()  # the legend keeps 0.2 inch above the panels, however many rows there are
    fig.legend(handles, texts, loc="upper center", ncol=len(keys), fontsize=9, frameon=False,
               bbox_to_anchor=(0.5, 1.0))
    fig.supxlabel("Epoch (dashed: the kept epoch, lowest validation loss)", fontsize=9)
    if title:
        fig.suptitle(title, y=1.0 + 0.25 / height)
    fig.tight_layout(rect=(0, 0, 1, 1.0 - 0.2 / height))
    return fig


def optuna_figure(draw, *args, size: tuple[float, float] = (7, 3.5), **kwargs) -> Figure:
    """Call one of ``optuna.visualization.matplotlib``'s functions and return its figure, resized, without
    letting the style it sets (``ggplot``) leak into the figures drawn after it. A log-scaled x axis (a learning
    rate) is labelled in plain numbers at an angle: over less than a decade matplotlib labels every minor tick in
    powers of ten, which run into each other on a narrow panel."""
    from matplotlib.ticker import FuncFormatter

    with plt.rc_context():
        result = draw(*args, **kwargs)
    axes = np.atleast_1d(result)
    for ax in axes.flat:
        if ax.get_xscale() == "log":
            plain = FuncFormatter(lambda value, _: f"{value:g}")
            ax.xaxis.set_major_formatter(plain)
            ax.xaxis.set_minor_formatter(plain)
            ax.tick_params(axis="x", which="both", labelrotation=45, labelsize=8)
    fig = axes.flat[0].figure
    fig.set_size_inches(*size)
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


def plot_perplexity(curve: Sequence[dict], title: str = "Language model: perplexity while pre-training") -> Figure:
    """Perplexity against tokens seen: on held-out unlabelled text (at each point) and on the training stream
    (since the previous point), log scale. ``curve``: :class:`~sentiment_lib.language_model.LanguageModelReport`
    ``.curve``."""
    frame = pd.DataFrame(list(curve))
    fig, ax = plt.subplots(figsize=(7, 3.6))
    millions = frame["tokens"] / 1e6
    ax.plot(millions, frame["heldout_perplexity"], marker="o", label="held-out unlabelled text")
    train = frame.dropna(subset=["train_perplexity"])
    ax.plot(train["tokens"] / 1e6, train["train_perplexity"], marker=".", linestyle="--", label="training stream")
    ax.set_yscale("log")
    ax.set_xlabel("Tokens seen (millions)")
    ax.set_ylabel("Perplexity (log scale)")
    last = frame["heldout_perplexity"].iloc[-1]
    ax.annotate(f"{last:.0f}", (millions.iloc[-1], last), textcoords="offset points", xytext=(4, 6))
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig
