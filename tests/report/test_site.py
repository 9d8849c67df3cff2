"""The report site: pages with header, contents and previous/next links, an index, stale marks, and a check
that finds broken links and figures; then the same site opened in headless Chromium (when installed)."""
import base64
import io
import shutil
import subprocess

import matplotlib
import nbformat
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sentiment_lib import site  # noqa: E402


def _png() -> str:
    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, 1], [0, 1])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _notebooks(tmp_path, names=("01_a", "02_b")):
    sources, report = tmp_path / "notebooks", tmp_path / "report"
    sources.mkdir()
    report.mkdir()
    paths = []
    for number, name in enumerate(names, start=1):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_markdown_cell(f"# {name} — a page\n\n**Objective.** Show page {number}. More."),
                    nbformat.v4.new_markdown_cell("## 1. A section"),
                    nbformat.v4.new_code_cell("fig = draw()")]
        nbformat.write(nb, sources / f"{name}.ipynb")
        executed = nbformat.from_dict(nb)
        executed.cells[2].outputs = [nbformat.v4.new_output("display_data", data={"image/png": _png(),
                                                                                   "text/plain": "<Figure>"})]
        executed.metadata["sentiment_run"] = {"profile": "smoke", "commit": "abc1234", "machine": "test CPU",
                                              "seconds": 12.4, "finished": "2026-12-01T10:00:00"}
        nbformat.write(executed, report / f"{name}.ipynb")
        paths.append(sources / f"{name}.ipynb")
    (report / "metrics.json").write_text('{"data": {"labelled": 50000, "positive_share": 0.5}, "models": '
                                         '{"lstm": {"accuracy": 0.8, "resumed": "from epoch 3"}, "gru": {}}}')
    return paths, report


def test_a_built_site_has_every_page_linked_and_every_figure(tmp_path):
    sources, report = _notebooks(tmp_path)
    pages = site.build_site("smoke", report, sources)
    assert [p.name for p in pages] == ["index.html", "01_a.html", "02_b.html"]
    assert site.check_site(report) == []
    first, second = [(report / n).read_text() for n in ("01_a.html", "02_b.html")]
    assert "abc1234" in first and "test CPU" in first and "12 s" in first  # profile, commit, machine, wall time
    assert 'href="02_b.html"' in first and 'href="01_a.html"' in second  # next / previous
    assert 'href="#1.-A-section"' in first  # the table of contents
    assert "cdnjs" not in first and "Stale page" not in first
    index = (report / "index.html").read_text()
    assert "Show page 1." in index and "50,000 labelled reviews" in index and "changed since it ran" not in index
    assert "Reused from the run directory's checkpoints" in index and "lstm (from epoch 3)" in index


def test_the_index_names_every_commit_its_pages_ran_at(tmp_path):
    # a chain resumed with --only: 02 ran later, at another commit with uncommitted changes
    sources, report = _notebooks(tmp_path)
    later = nbformat.read(report / "02_b.ipynb", as_version=4)
    later.metadata["sentiment_run"].update(commit="def5678", dirty=True, seconds=30.0, finished="2026-12-02T09:00:00")
    nbformat.write(later, report / "02_b.ipynb")
    site.build_site("smoke", report, sources)
    header = (report / "index.html").read_text().split("<main>")[0]
    assert "abc1234 / def5678 (with uncommitted changes)" in header
    assert "wall time 42 s" in header and "2026-12-02T09:00:00" in header
    assert "def5678" not in (report / "01_a.html").read_text()  # each page keeps its own commit


def test_chain_info_leaves_the_wall_time_unknown_when_a_page_lacks_it():
    info = site.chain_info([{"commit": "abc1234", "seconds": 5.0, "machine": "m"},
                            {"commit": "abc1234", "machine": "m", "finished": "then"}])
    assert info["seconds"] is None and info["commit"] == "abc1234" and info["machine"] == "m"
    assert info["finished"] == "then" and info["precision"] == ""


def test_a_changed_source_notebook_marks_its_page_stale(tmp_path):
    sources, report = _notebooks(tmp_path)
    nb = nbformat.read(sources[1], as_version=4)
    nb.cells[2].source += "\nprint('new')"
    nbformat.write(nb, sources[1])
    site.build_site("smoke", report, sources)
    assert "Stale page" in (report / "02_b.html").read_text()
    assert "Stale page" not in (report / "01_a.html").read_text()
    assert "its notebook changed since it ran" in (report / "index.html").read_text()


def test_the_check_finds_a_broken_link_and_a_broken_figure(tmp_path):
    sources, report = _notebooks(tmp_path)
    site.build_site("smoke", report, sources)
    page = report / "02_b.html"
    page.write_text(page.read_text().replace('href="01_a.html"', 'href="00_gone.html"', 1)
                    .replace('src="data:image/png;base64,', 'src="data:image/png;base64,AAAA', 1))
    problems = site.check_site(report)
    assert any("missing 00_gone.html" in p for p in problems)
    assert any("png figure does not decode" in p for p in problems)
    with pytest.raises(FileNotFoundError, match="make run"):
        site.build_site("smoke", tmp_path / "empty", sources)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (.ci/run installs Debian's chromium)")
def test_every_page_loads_in_headless_chromium_with_its_figures(tmp_path):
    sources, report = _notebooks(tmp_path)
    pages = site.build_site("smoke", report, sources)
    for page in pages:
        dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                              "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
        images = page.read_text().count("<img")
        assert f'data-figures="{images} loaded, 0 broken"' in dom, (page.name, dom[-500:])


def test_headlines_and_the_index_name_the_models_chosen_on_validation():
    from sentiment_lib.site import claims_list, headline, headline_figure, headline_table, profiles_table

    blend = "attention_lstm 128 (language-model start + AT) + nbsvm (400 tokens) (0.55 / 0.45)"
    manifest = {"data": {"subset_sizes": {"test": 1000}},
                "models": {"attention_lstm": {"accuracy": 0.88}, "bilstm": {"accuracy": 0.95},  # best on test, not val
                           "final": {"accuracy": 0.885}, "lstm": {"accuracy": 0.80},
                           "attention_lstm 128 (language-model start + AT)": {"accuracy": 0.90},
                           "nbsvm (400 tokens)": {"accuracy": 0.89}, blend: {"accuracy": 0.91, "blend_weight": 0.55},
                           "final (05) + nbsvm (400 tokens)": {"accuracy": 0.906, "blend_weight": 0.55}},
                "seed_spread": {"lstm": {"mean": 0.82, "std": 0.03, "runs": 3, "min": 0.8, "max": 0.85}},
                "choices": {"04": {"best_network": "attention_lstm", "best_linear": "nbsvm (400 tokens)",
                                   "ladder_network": "attention_lstm 128 (language-model start + AT)", "blend": blend},
                            "05": {"final": "final (05) + nbsvm (400 tokens)"}},
                "claims": {"03": [{"claim": "It learns.", "holds": True, "evidence": "0.80"}],
                           "04": [{"claim": "AT helps.", "holds": False, "evidence": "within seed spread"}]}}
    three, four, five = (headline(stem, manifest) for stem in ("03_baseline", "04_improvements", "05_optuna"))
    assert three == "baseline LSTM: test accuracy 0.8000 [0.774, 0.824]; 0.8200 ± 0.0300 (3 seeds)"
    assert four.startswith("best network of the architecture comparison: attention_lstm, test accuracy 0.8800") and "bilstm" not in four
    assert "averaged with nbsvm (400 tokens): 0.9100" in four
    assert five.startswith("final model (the networks forward selection kept + NBSVM): test accuracy 0.9060") and \
        "the networks alone 0.8850" in five
    assert "averaged" not in headline("04_improvements", {**manifest, "choices": {"04": {"best_network": "attention_lstm"}}})
    table = headline_table(manifest)
    assert table.count("<tr>") == 7 and "0.8200 ± 0.0300 (3 seeds)" in table and "bilstm" not in table
    figure = headline_figure(manifest)
    assert figure.startswith('<img class="headline"') and "bilstm" not in figure
    png = base64.b64decode(figure.split("base64,", 1)[1].split('"', 1)[0])
    assert png.startswith(b"\x89PNG")
    assert "LSTM baseline (03): 0.8000" in figure and "final model: the networks forward selection kept + NBSVM (05): 0.9060" in figure
    assert headline_figure({}) == "" and headline_figure({**manifest, "data": {}}) == ""  # no interval: no figure
    listed = claims_list(manifest)
    assert "1 of 2 claims hold" in listed and '<li class="fails">✗ AT helps.' in listed
    assert claims_list({}) == "" and headline_table({}) == ""
    assert "<th>quick</th>" in profiles_table() and "tuning trials × epochs" in profiles_table()
