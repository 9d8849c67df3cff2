"""The course report as a small static site: ``reports/<profile>/index.html`` and one page per notebook.

Plain nbconvert (its ``lab`` HTML template, which embeds every figure) plus a little post-processing, rather
than a site generator such as Jupyter Book: the pages are the executed notebooks as they are, the build
needs nothing beyond what the runner already installs, takes seconds, and works offline. Each page gets

- a header: the profile, the commit it ran at, the machine, its wall time and when it finished, and a
  warning when its source notebook has changed since it ran (the page is then *stale*);
- a table of contents (its headings) and previous / next links;
- no widget state (progress bars render as nothing in a static page) and no scripts fetched from the web.

The index page states the study's objective and lists the five notebooks with a one-line summary, their
headline numbers (from the run's ``metrics.json``) and a stale mark. :func:`check_site` is what a test
runs on a built site: every page is there, every link resolves, every figure is a decodable image.
"""
from __future__ import annotations

import base64
import html
import json
import re
import urllib.parse
from pathlib import Path
from typing import Any, Sequence

import nbformat

from . import chain
from .manifest import FINAL_NETWORKS, interval, label_of

STYLE = """
<style>
  .site-header { font: 14px/1.45 system-ui, sans-serif; background: #f4f6f8; border-bottom: 1px solid #d0d7de;
                 padding: 10px 24px; }
  .site-header a { color: #0b5cad; text-decoration: none; margin-right: 14px; }
  .site-header .run { color: #444; margin-top: 4px; }
  .site-header .stale { background: #fff3cd; border: 1px solid #e0c36c; padding: 6px 10px; margin-top: 6px; }
  .site-toc { font: 13px/1.5 system-ui, sans-serif; padding: 4px 24px 8px; border-bottom: 1px solid #eee; }
  .site-toc ul { margin: 4px 0; padding-left: 20px; columns: 2; }
  .site-footer { font: 14px system-ui, sans-serif; padding: 16px 24px; border-top: 1px solid #d0d7de; }
  .jp-RenderedHTMLCommon table, .jp-OutputArea-output table { display: block; overflow-x: auto; max-width: 100%; }
  .jp-RenderedImage img { max-width: 100%; height: auto; }
  .jp-InputArea pre, .jp-OutputArea-output pre { white-space: pre-wrap; overflow-wrap: anywhere; }
  .jp-OutputArea-output table tbody th { white-space: normal; max-width: 26em; }
</style>
"""
# Marks the page in the DOM once every image has decoded, so a headless browser can check the figures.
FIGURE_PROBE = """
<script>
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (img) { return !(img.complete && img.naturalWidth > 0); }).length;
  document.body.setAttribute("data-figures", images.length + " loaded, " + broken + " broken");
});
</script>
"""
_REMOTE_SCRIPT = re.compile(r'<script[^>]+src="https?://[^"]*"[^>]*>\s*</script>\s*', re.S)
_MATHJAX_CONFIG = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)
_MERMAID = re.compile(r'<script type="module">(?:(?!</script>).)*?mermaid(?:(?!</script>).)*</script>\s*', re.S)
_HEADING = re.compile(r'<h([12])[^>]*\bid="([^"]+)"[^>]*>(.*?)</h\1>', re.S)
_TAG = re.compile(r"<[^>]+>")
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
# Cells whose code is plumbing (imports and set-up, papermill's parameters, job scheduling, saving): the page shows
# their output only; the notebook keeps the code.
HIDDEN_INPUT_TAGS = {"hide-input", "parameters", "injected-parameters"}


def _text(fragment: str) -> str:
    return html.unescape(_TAG.sub("", fragment)).replace("¶", "").strip()


def run_info(notebook: nbformat.NotebookNode) -> dict[str, Any]:
    """What the runner recorded about an executed notebook (``metadata.sentiment_run``: profile, commit,
    machine, precision, seconds, finished) completed from papermill's own metadata (duration, end time, parameters)."""
    recorded = dict(notebook.metadata.get("sentiment_run", {}))
    papermill = notebook.metadata.get("papermill", {})
    recorded.setdefault("profile", papermill.get("parameters", {}).get("PROFILE"))
    recorded.setdefault("seconds", papermill.get("duration"))
    recorded.setdefault("finished", papermill.get("end_time"))
    return recorded


def is_stale(executed: Path, source: Path) -> bool:
    """Whether the executed notebook's cells differ from its source notebook's (or the source is gone)."""
    return not source.exists() or chain.cells_of(executed, redact=True) != chain.cells_of(source, redact=True)


EXERCISE_TAG = "exercise"  # the classroom edition's cells (prompt, answer, test): not part of the report


def _strip_widgets(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy for readers: without widget state and widget views (progress bars: nothing to show in a static
    page) and without the exercise cells (tag ``exercise``; they are for students, see ``classroom/``)."""
    notebook = nbformat.from_dict(json.loads(json.dumps(notebook)))
    notebook.metadata.pop("widgets", None)
    notebook.cells = [c for c in notebook.cells if EXERCISE_TAG not in c.get("metadata", {}).get("tags", [])]
    for cell in notebook.cells:
        outputs = []
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET_MIME in data:
                if set(data) - {WIDGET_MIME, "text/plain"}:
                    data.pop(WIDGET_MIME)
                    outputs.append(out)
                continue  # only a widget (its text is "HBox(...)"): drop the output
            outputs.append(out)
        cell["outputs"] = outputs
    return notebook


def chain_info(infos: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One :func:`run_info` for pages of a chain (in chain order) that may have run apart (``--only``, a resumed
    run): profile, commit, machine and precision each as their distinct values joined by " / " (a commit marked
    when it had uncommitted changes; "" when none recorded), ``seconds`` summed (``None`` when a page lacks
    them), ``finished`` the last page's."""
    def joined(texts) -> str:
        return " / ".join(dict.fromkeys(texts))

    commits = (f"{i['commit']} (with uncommitted changes)" if i.get("dirty") else str(i["commit"])
               for i in infos if i.get("commit"))
    seconds = [i.get("seconds") for i in infos]
    return {**{key: joined(str(i[key]) for i in infos if i.get(key)) for key in ("profile", "machine", "precision")},
            "commit": joined(commits), "dirty": False,
            "seconds": None if not infos or None in seconds else sum(float(s) for s in seconds),
            "finished": infos[-1].get("finished") if infos else None}


def _header(title: str, info: dict[str, Any], stale: bool, index: str = "index.html") -> str:
    seconds = info.get("seconds")
    when = f"{float(seconds):.0f} s" if seconds is not None else "not recorded"
    commit = info.get("commit") or "not recorded"
    if info.get("dirty"):
        commit += " (with uncommitted changes)"
    parts = [f'<div class="site-header"><a href="{index}">Course report</a><strong>{html.escape(title)}</strong>',
             f'<div class="run">Profile <b>{html.escape(str(info.get("profile")))}</b> · commit '
             f'<code>{html.escape(commit)}</code> · machine: {html.escape(str(info.get("machine") or "not recorded"))}'
             f' · precision: {html.escape(str(info.get("precision") or "not recorded"))}'
             f' · wall time {when} · finished {html.escape(str(info.get("finished") or "—"))}</div>']
    if stale:
        parts.append('<div class="stale"><b>Stale page.</b> Its source notebook has changed since this page was '
                     'executed: the text and numbers below come from an older version. Rerun it with '
                     f'<code>make run PROFILE={html.escape(str(info.get("profile")))}</code>.</div>')
    parts.append("</div>")
    return "\n".join(parts)


def _nav(previous: tuple[str, str] | None, following: tuple[str, str] | None) -> str:
    links = []
    if previous:
        links.append(f'<a href="{previous[0]}">← {html.escape(previous[1])}</a>')
    links.append('<a href="index.html">index</a>')
    if following:
        links.append(f'<a href="{following[0]}">{html.escape(following[1])} →</a>')
    return '<div class="site-footer">' + " · ".join(links) + "</div>"


def notebook_title(notebook: nbformat.NotebookNode, fallback: str) -> str:
    """The first level-1 heading of the notebook's markdown (``# 03 — A baseline LSTM``), else ``fallback``."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            match = re.search(r"^#\s+(.+)$", cell.source, re.M)
            if match:
                return match.group(1).strip()
    return fallback


def objective(notebook: nbformat.NotebookNode) -> str:
    """The first sentence after ``**Objective.**`` in the notebook's markdown, or ``""``."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and "**Objective.**" in cell.source:
            rest = " ".join(cell.source.split("**Objective.**", 1)[1].split())
            return re.split(r"(?<=[.!?])\s", rest, maxsplit=1)[0]
    return ""


def render_page(executed: Path, source: Path, previous: tuple[str, str] | None,
                following: tuple[str, str] | None) -> str:
    """The HTML page of one executed notebook (see the module docstring)."""
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    notebook = nbformat.read(executed, as_version=4)
    title = notebook_title(notebook, executed.stem)
    exporter = HTMLExporter(template_name="lab")
    exporter.register_preprocessor(TagRemovePreprocessor(remove_input_tags=HIDDEN_INPUT_TAGS), enabled=True)
    body, _ = exporter.from_notebook_node(_strip_widgets(notebook))
    body = _MERMAID.sub("", _MATHJAX_CONFIG.sub("", _REMOTE_SCRIPT.sub("", body)))
    body = body.replace("<title>Notebook</title>", f"<title>{html.escape(title)}</title>", 1)
    headings = [(int(level), anchor, _text(text)) for level, anchor, text in _HEADING.findall(body)]
    toc = "".join(f'<li><a href="#{anchor}">{html.escape(text)}</a></li>' for level, anchor, text in headings
                  if level == 2)
    top = _header(title, run_info(notebook), is_stale(executed, source))
    top += f'<nav class="site-toc"><b>Contents</b><ul>{toc}</ul></nav>' if toc else ""
    body = body.replace("</head>", STYLE + "</head>", 1)
    body = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + top, body, count=1)
    return body.replace("</body>", _nav(previous, following) + FIGURE_PROBE + "</body>", 1)


def _interval(metrics: dict[str, Any], n: int | None) -> str:
    accuracy = metrics.get("accuracy")
    if accuracy is None:
        return "—"
    bounds = interval(metrics, n)
    return f"{accuracy:.4f}" if bounds is None else f"{accuracy:.4f} [{bounds[0]:.3f}, {bounds[1]:.3f}]"


def _spread(manifest: dict[str, Any], name: str | None) -> str:
    """``"<mean> ± <sd> (<n> seeds)"`` for a model whose seed spread the run measured, else ``""``."""
    spread = (manifest.get("seed_spread") or {}).get(name or "")
    if not spread or spread.get("std") is None or spread.get("runs", 0) < 2:
        return ""
    return f"{spread['mean']:.4f} ± {spread['std']:.4f} ({spread['runs']} seeds)"


def headline(stem: str, manifest: dict[str, Any]) -> str:
    """The headline numbers of notebook ``stem`` from the run's manifest, as short HTML ("" if none): every model
    named is the one its notebook chose on validation (the manifest's ``choices``)."""
    data, models = manifest.get("data", {}), manifest.get("models", {})
    choices = manifest.get("choices", {})
    n_test = (data.get("subset_sizes") or {}).get("test")
    if stem.startswith("01") and data.get("labelled"):
        return f"{data['labelled']:,} labelled reviews, {data.get('positive_share', 0):.1%} positive"
    if stem.startswith("02") and data.get("subset_sizes"):
        sizes = ", ".join(f"{k} {v:,}" for k, v in data["subset_sizes"].items())
        return f"{sizes}; vocabulary {data.get('vocab_size', 0):,}"
    if stem.startswith("03") and "lstm" in models:
        spread = _spread(manifest, "lstm")
        return f"baseline LSTM: test accuracy {_interval(models['lstm'], n_test)}" + (f"; {spread}" if spread else "")
    chosen = choices.get("04", {})
    if stem.startswith("04") and chosen.get("best_network") in models:
        best = chosen["best_network"]
        spread = _spread(manifest, best)
        line = (f"best network of the architecture comparison: {html.escape(label_of(manifest, best))}, "
                f"test accuracy {_interval(models[best], n_test)}"
                + (f"; {spread}" if spread else ""))
        if chosen.get("blend") in models:
            line += (f"; the ladder's network ({html.escape(label_of(manifest, chosen['ladder_network']))}) averaged "
                     f"with {html.escape(label_of(manifest, chosen['best_linear']))}: "
                     f"{_interval(models[chosen['blend']], n_test)}")
        return line
    final = choices.get("05", {}).get("final")
    if stem.startswith("05") and final in models:
        networks = models.get(FINAL_NETWORKS) or (models.get("final", {}) if final != "final" else {})  # older runs
        return (f"final model (the networks forward selection kept + NBSVM): test accuracy "
                f"{_interval(models[final], n_test)}; the networks alone {_interval(networks, n_test)}")
    return ""


def headline_rows(manifest: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(notebook, what, model name)`` of each headline model the run recorded with a test accuracy: the
    models each notebook chose on validation (the manifest's ``choices``)."""
    models, choices = manifest.get("models", {}), manifest.get("choices", {})
    c4, c5 = choices.get("04", {}), choices.get("05", {})
    rows = [("03", "LSTM baseline", "lstm"),
            ("04", "best network of the architecture comparison (on validation)", c4.get("best_network")),
            ("04", "best linear reference on validation", c4.get("best_linear")),
            ("04", "the ladder's network (lowest validation loss of its networks)", c4.get("ladder_network")),
            ("04", "the ladder's network averaged with the best linear reference", c4.get("blend")),
            ("05", "final model: the networks forward selection kept + NBSVM", c5.get("final"))]
    return [row for row in rows if row[2] in models and models[row[2]].get("accuracy") is not None]


def headline_figure(manifest: dict[str, Any]) -> str:
    """The headline models' test accuracies as a dot-and-interval figure (:func:`~sentiment_lib.plots.
    plot_accuracy_intervals`; the linear reference in its own colour), an inline PNG ``<img>``; "" when the run
    recorded none, or no interval for one of them."""
    import io

    import matplotlib.pyplot as plt
    import pandas as pd

    from .plots import plot_accuracy_intervals

    models = manifest.get("models", {})
    n_test = ((manifest.get("data") or {}).get("subset_sizes") or {}).get("test")
    rows = {}
    for notebook, what, name in headline_rows(manifest):
        bounds = interval(models[name], n_test)
        if bounds is None:
            return ""
        rows[f"{what} ({notebook})"] = {
            "accuracy": models[name]["accuracy"], "accuracy_low": bounds[0], "accuracy_high": bounds[1]}
    if not rows:
        return ""
    linear = [label for label in rows if label.startswith("best linear reference")]
    fig = plot_accuracy_intervals(pd.DataFrame.from_dict(rows, orient="index"), references=linear,
                                  title="Test accuracy of the models each notebook chose on validation")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    alt = "; ".join(f"{label}: {row['accuracy']:.4f}" for label, row in rows.items())
    return (f'<img class="headline" alt="{html.escape(alt)}" '
            f'src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">')


def headline_table(manifest: dict[str, Any]) -> str:
    """The study's headline numbers as an HTML table: each model its notebook chose on validation, with its test
    accuracy, 95% interval and seed spread where measured ("" when the run recorded none)."""
    models = manifest.get("models", {})
    n_test = ((manifest.get("data") or {}).get("subset_sizes") or {}).get("test")
    cells = []
    for notebook, what, name in headline_rows(manifest):
        seeds = _spread(manifest, name) or "one seed"
        cells.append(f"<tr><td>{notebook}</td><td>{html.escape(what)}<br><small>{html.escape(label_of(manifest, name))}"
                     "</small></td>"
                     f"<td>{_interval(models[name], n_test)}</td><td>{seeds}</td></tr>")
    if not cells:
        return ""
    return ("<table class=\"headline\"><tr><th>notebook</th><th>model</th><th>test accuracy [95% interval]</th>"
            "<th>seed mean ± sd</th></tr>" + "".join(cells) + "</table>")


def claims_list(manifest: dict[str, Any]) -> str:
    """Every claim the notebooks checked (the manifest's ``claims``), each with its verdict and evidence, as an
    HTML list per notebook ("" when none was recorded)."""
    recorded = manifest.get("claims") or {}
    parts = []
    for notebook in sorted(recorded):
        items = "".join(
            f'<li class="{"holds" if row.get("holds") else "fails"}">{"✓" if row.get("holds") else "✗"} '
            f'{html.escape(row.get("claim", ""))} <small>({html.escape(row.get("evidence", ""))})</small></li>'
            for row in recorded[notebook])
        parts.append(f"<li><b>{html.escape(notebook)}</b><ul>{items}</ul></li>")
    from .claims import summary

    holding, failing = summary(recorded)
    return (f"<p>{holding} of {holding + failing} claims hold for this run's numbers; a ✗ marks one they "
            f"contradict.</p><ul class=\"claims\">{''.join(parts)}</ul>") if parts else ""


def profiles_table() -> str:
    """How the profiles differ, from :data:`sentiment_lib.profiles.PROFILES` itself, as an HTML table."""
    from .profiles import PROFILES

    def size(value: Any) -> str:
        return "all" if value is None else f"{value:,}"

    rows = {"training reviews": lambda p: size(p["train_size"]), "test reviews": lambda p: size(p["test_size"]),
            "tokens read per review": lambda p: str(p["max_len"]),
            "embedding / hidden size": lambda p: f"{p['embed_dim']} / {p['hidden_size']}",
            "epochs (patience)": lambda p: f"{p['epochs']} ({p['patience']})",
            "language model: epochs, width": lambda p: f"{p['lm_epochs']}, {p['lm_hidden']}"
                                                      + (", and a backward one" if p["lm_backward"] else ""),
            "seeds per spread": lambda p: str(p["seeds"]), "tuning trials × epochs": lambda p: f"{p['n_trials']} × {p['trial_epochs']}"}
    names = list(PROFILES)
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    body = "".join(f"<tr><td>{html.escape(label)}</td>" + "".join(f"<td>{get(PROFILES[n])}</td>" for n in names)
                   + "</tr>" for label, get in rows.items())
    return f"<table class=\"profiles\"><tr><th></th>{head}</tr>{body}</table>"


def reused_line(manifest: dict[str, Any]) -> str:
    """Which trainings came from the run directory's checkpoints instead of being trained again, as HTML."""
    reused = {row.get("label", name): row["resumed"] for name, row in manifest.get("models", {}).items()
              if row.get("resumed")}
    if not reused:
        return "Every model on these pages was trained in this run (none was reused from a checkpoint)."
    return ("Reused from the run directory's checkpoints, with the same result as training them again (trained "
            "earlier by another notebook of this run with the same configuration, or by a run that was killed or "
            "had finished): "
            + ", ".join(f"{html.escape(name)} ({html.escape(str(how))})" for name, how in sorted(reused.items())) + ".")


INTRO = """<p><b>Objective.</b> Classify IMDB movie reviews as positive or negative with LSTM-family networks in
PyTorch, and say honestly how well each idea works: explore the data, prepare it without leakage, train a
baseline, improve on it, and tune it with Optuna. Every number in these pages is computed by the notebook
that shows it; intervals are 95%. Every choice — the best network, its linear partner, the study's start, the
final model — is made on the validation reviews; the official test reviews only report. A difference between
two models counts when McNemar's paired test separates them <i>and</i> it exceeds what a change of seed moves it
(notebook 03 states the rule).</p>"""
OLDER_RUN = """<p class="stale">This run recorded no models chosen on validation and no checked claims: it ran with
an older version of the notebooks (see the stale marks below). Rerun it to fill this section.</p>"""
PROFILES_NOTE = """<p>The <code>smoke</code> profile exists for the tests; <code>quick</code> runs on a laptop CPU
with a subset of the training reviews (its size is in the table), shorter reviews and small networks, so its
networks see less data and start from a smaller language model than <code>full</code>'s, which uses every review.
The lessons above are this run's; each profile's run has its own index (<code>reports/&lt;profile&gt;/index.html</code>).</p>"""


def _write(path: Path, text: str) -> None:
    """Write a page atomically: a build that fails half-way leaves the pages as they were."""
    from .files import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def build_site(profile: str, report_dir: Path | None = None, notebooks: Sequence[Path] | None = None) -> list[Path]:
    """Render every executed notebook of ``report_dir`` (default ``reports/<profile>/``) as a page beside it
    and write ``index.html``; returns the pages written, index first."""
    from . import config

    report_dir = Path(report_dir) if report_dir else config.report_dir(profile)
    sources = list(notebooks) if notebooks is not None else chain.chain()
    pages = [(s, report_dir / s.name) for s in sources if (report_dir / s.name).exists()]
    if not pages:
        raise FileNotFoundError(f"No executed notebook in {report_dir}: run the chain first "
                                f"(make run PROFILE={profile}).")
    titles = [notebook_title(nbformat.read(e, as_version=4), e.stem) for _, e in pages]
    written = []
    for i, (source, executed) in enumerate(pages):
        previous = (pages[i - 1][1].with_suffix(".html").name, titles[i - 1]) if i else None
        following = (pages[i + 1][1].with_suffix(".html").name, titles[i + 1]) if i + 1 < len(pages) else None
        out = executed.with_suffix(".html")
        _write(out, render_page(executed, source, previous, following))
        written.append(out)
    manifest_file = report_dir / "metrics.json"
    manifest = json.loads(manifest_file.read_text()) if manifest_file.exists() else {}
    rows, infos = [], []
    for (source, executed), title in zip(pages, titles):
        notebook = nbformat.read(executed, as_version=4)
        stale = is_stale(executed, source)
        mark = ' <span class="stale">stale: its notebook changed since it ran</span>' if stale else ""
        infos.append(run_info(notebook))
        took = infos[-1].get("seconds")
        ran = f" · ran in {float(took):.0f} s" if took is not None else ""
        rows.append(f'<li><a href="{executed.with_suffix(".html").name}"><b>{html.escape(title)}</b></a>{mark}'
                    f'<br>{html.escape(objective(notebook))}<br><i>{headline(executed.stem, manifest)}</i>{ran}</li>')
    info = chain_info(infos)  # the whole chain: every page's commit, the summed wall time, when the last finished
    index = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>IMDB sentiment — course report '
             f'({html.escape(profile)})</title>{STYLE}<style>body{{font:16px/1.5 system-ui,sans-serif;margin:0}}'
             f'main{{max-width:860px;margin:0 auto;padding:8px 24px}} li{{margin:12px 0}}'
             f'.stale{{background:#fff3cd;padding:0 6px}} table.headline td,table.profiles td,table th{{padding:3px 10px;'
             f'border-bottom:1px solid #ddd;text-align:left}} li.fails{{color:#9a1c1c}} ul.claims li{{margin:4px 0}}'
             f'img.headline{{max-width:100%}}'
             f'</style></head><body>'
             f'{_header(f"Profile {profile}", info, False)}<main><h1>IMDB sentiment with LSTM-family models</h1>'
             f'{INTRO}<h2>Headline numbers</h2>{headline_figure(manifest)}{headline_table(manifest) or OLDER_RUN}'
             f'<h2>What this run shows</h2>{claims_list(manifest) or OLDER_RUN}'
             f'<h2>The profiles</h2>{PROFILES_NOTE}{profiles_table()}'
             f'<h2>The notebooks</h2><ol>{"".join(rows)}</ol><p>{reused_line(manifest)}</p>'
             f'<p><a href="metrics.json">metrics.json</a>: every number above, machine-readable.</p></main>'
             f'{FIGURE_PROBE}</body></html>')
    _write(report_dir / "index.html", index)
    return [report_dir / "index.html", *written]


def check_site(report_dir: Path) -> list[str]:
    """Problems of a built site, as sentences (empty when there are none): a page listed in the index that
    is missing, a local link or anchor that does not resolve, an embedded figure that is not a decodable
    PNG/JPEG/SVG."""
    problems = []
    index = report_dir / "index.html"
    if not index.exists():
        return [f"No index.html in {report_dir}."]
    for page in [index, *sorted(report_dir.glob("*.html"))]:
        text = page.read_text(encoding="utf-8")
        anchors = set(re.findall(r'\bid="([^"]+)"', text))
        for href in re.findall(r'\bhref="([^"]+)"', text):
            if re.match(r"[a-z]+:", href):
                continue  # external (http:, mailto:)
            target, _, fragment = href.partition("#")
            if target and not (report_dir / urllib.parse.unquote(target)).exists():
                problems.append(f"{page.name}: link to missing {target}")
            elif not target and fragment and fragment not in anchors and urllib.parse.unquote(fragment) not in anchors:
                problems.append(f"{page.name}: anchor #{fragment} not on the page")
        for kind, payload in re.findall(r'src="data:image/([a-z+]+);base64,([^"]+)"', text):
            raw = base64.b64decode(payload)
            ok = (raw.startswith(b"\x89PNG") if kind == "png" else raw.startswith(b"\xff\xd8") if kind == "jpeg"
                  else b"<svg" in raw[:2000])
            if not ok:
                problems.append(f"{page.name}: an embedded {kind} figure does not decode")
        if page != index and "site-header" not in text:
            problems.append(f"{page.name}: not built by the site (no header)")
    return problems
