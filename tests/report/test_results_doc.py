"""docs/results.md is generated from reports/<profile>/metrics.json (sentiment_lib.results_doc), never typed."""
import json
from pathlib import Path

import pytest

from sentiment_lib import results_doc
from sentiment_lib.__main__ import main
from sentiment_lib.results_doc import ResultsError, html_table_to_markdown, load_manifest, render_results
from sentiment_lib.uncertainty import accuracy_interval

ROOT = Path(__file__).resolve().parents[2]
N_TEST = 1000


def manifest(**changes):
    """A small manifest as the runner writes it: 03's baseline, 04's choices, 05's final model."""
    record = {
        "profile": "quick",
        "data": {"subset_sizes": {"train": 800, "val": 200, "test": N_TEST}},
        "models": {
            "lstm": {"accuracy": 0.812, "val_accuracy": 0.805, "val_loss": 0.4123, "train_seconds": 12.3},
            "attention_lstm": {"accuracy": 0.857, "val_accuracy": 0.861, "val_loss": 0.3311, "train_seconds": 20.0},
            "nbsvm (96 tokens)": {"accuracy": 0.843, "val_accuracy": 0.85, "val_loss": None, "train_seconds": 1.4},
            "final (05) + nbsvm (96 tokens)": {"accuracy": 0.871, "val_accuracy": 0.866},
            "skipped, no accuracy": {"val_accuracy": 0.5},
        },
        "seed_spread": {"lstm": {"mean": 0.8011, "std": 0.0123, "runs": 3, "min": 0.79, "max": 0.812}},
        "choices": {"04": {"best_network": "attention_lstm", "best_linear": "nbsvm (96 tokens)"},
                    "05": {"final": "final (05) + nbsvm (96 tokens)"}},
    }
    record.update(changes)
    return record


def write(reports: Path, profile: str, record) -> Path:
    path = reports / profile / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


def interval(accuracy: float, n: int = N_TEST) -> str:
    low, high = accuracy_interval(round(accuracy * n), n)
    return f"{accuracy:.4f} [{low:.3f}, {high:.3f}]"


def table_rows(text: str, heading: str) -> list[str]:
    """The Markdown table rows (without header and rule) that follow ``heading`` in ``text``."""
    after = text.split(heading, 1)[1].lstrip("\n")
    lines = []
    for line in after.splitlines():
        if not line.startswith("|"):
            if lines:
                break
            continue
        lines.append(line)
    return lines[2:]


def test_the_tables_numbers_come_from_the_metrics_file(tmp_path):
    write(tmp_path, "quick", manifest())
    text = render_results(tmp_path)
    assert text.count("## `quick`") == 1 and "## `full`" not in text
    headline = table_rows(text, "### Headline")
    assert [r.split("|")[1].strip() for r in headline] == ["03", "04", "04", "05"]
    assert f"| 03 | LSTM baseline — `lstm` | {interval(0.812)} | 0.8011 ± 0.0123 (3 seeds) |" in headline
    assert any("`attention_lstm`" in r and interval(0.857) in r for r in headline)
    assert any("`final (05) + nbsvm (96 tokens)`" in r and interval(0.871) in r for r in headline)
    every = table_rows(text, "### Every model the run scored")
    assert len(every) == 4  # the model without a test accuracy is left out
    assert f"| `lstm` | {interval(0.812)} | 0.8050 | 0.4123 | 12 s |" in every
    assert f"| `nbsvm (96 tokens)` | {interval(0.843)} | 0.8500 | — | 1 s |" in every
    assert f"on {N_TEST:,} test reviews" in text


def test_another_number_in_the_file_is_another_number_on_the_page(tmp_path):
    record = manifest()
    record["models"]["lstm"]["accuracy"] = 0.733
    write(tmp_path, "quick", record)
    text = render_results(tmp_path)
    assert interval(0.733) in text and "0.8120" not in text


def test_one_section_per_profile_with_a_metrics_file_in_profile_order(tmp_path):
    write(tmp_path, "full", manifest(profile="full"))
    write(tmp_path, "quick", manifest())
    (tmp_path / "smoke").mkdir()  # a report folder without metrics.json: no section
    text = render_results(tmp_path)
    assert text.index("## `quick`") < text.index("## `full`") and "## `smoke`" not in text
    assert render_results(tmp_path, ["full"]).count("## `") == 1


def test_a_run_without_choices_says_so_and_shows_only_the_baseline(tmp_path):
    older = manifest()
    del older["choices"]  # as reports/full/metrics.json, written by the notebooks before they recorded choices
    write(tmp_path, "full", older)
    text = render_results(tmp_path)
    write(tmp_path, "full", manifest(choices=None))
    assert render_results(tmp_path) == text
    assert "recorded no models chosen on validation" in text
    assert [r.split("|")[1].strip() for r in table_rows(text, "### Headline")] == ["03"]


def test_a_missing_file_names_the_command_that_writes_it(tmp_path):
    with pytest.raises(ResultsError, match=r"make run PROFILE=quick"):
        render_results(tmp_path)  # no profile has results
    with pytest.raises(ResultsError, match=r"full/metrics.json is missing: .*make run PROFILE=full.*make results"):
        render_results(tmp_path, ["full"])


@pytest.mark.parametrize("broken, named", [
    (manifest(models={}), "'models'"),
    (manifest(models={"lstm": {"val_accuracy": 0.8}}), "'models'"),
    (manifest(data={}), "'data.subset_sizes.test'"),
    ([1, 2], "not a JSON object"),
])
def test_a_file_without_the_needed_keys_is_refused_with_the_fix(tmp_path, broken, named):
    path = write(tmp_path, "quick", broken)
    with pytest.raises(ResultsError) as err:
        load_manifest(path, "quick")
    assert named in str(err.value) and "make run PROFILE=quick" in str(err.value)


def test_unreadable_json_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "quick" / "metrics.json"
    path.parent.mkdir()
    path.write_text("{not json")
    with pytest.raises(ResultsError, match="cannot be read as JSON.*make run PROFILE=quick"):
        load_manifest(path, "quick")


def test_html_tables_become_markdown_with_pipes_escaped():
    table = ("<table><tr><th>a</th><th>b &amp; c</th></tr>"
             "<tr><td>1</td><td>x | y<br><small>name</small></td></tr></table>")
    assert html_table_to_markdown(table) == "| a | b & c |\n|---|---|\n| 1 | x \\| y — `name` |"
    assert html_table_to_markdown("") == ""


def test_the_command_writes_the_page_and_fails_clearly(tmp_path, monkeypatch, capsys):
    reports = tmp_path / "reports"
    write(reports, "quick", manifest())
    monkeypatch.setenv("SENTIMENT_REPORTS", str(reports))
    out = tmp_path / "docs" / "results.md"
    assert main(["results", "--out", str(out)]) == 0
    assert interval(0.857) in out.read_text()
    assert main(["results", "--out", str(out), "--profile", "full"]) == 2
    assert "make run PROFILE=full" in capsys.readouterr().err


def test_the_committed_page_matches_the_committed_reports():
    committed = ROOT / "docs" / "results.md"
    assert committed.exists(), "docs/results.md is missing: make results"
    assert committed.read_text(encoding="utf-8") == render_results(ROOT / "reports"), (
        "docs/results.md is out of date with reports/*/metrics.json (or the notebooks' stale marks): make results")


def test_the_readme_links_to_the_generated_page_and_types_no_results_table():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/results.md" in readme and "make results" in readme
    assert "| test accuracy |" not in readme and results_doc.GENERATED_NOTE not in readme
