"""The nbval snapshots in tests/regression/ must be executions of the current notebooks."""
from sentiment_lib import chain


def test_every_notebook_has_a_fresh_snapshot():
    stale = chain.stale_snapshots()
    assert not stale, (
        f"Regression snapshots out of date for {stale}: the notebook changed after its snapshot was "
        f"executed. Regenerate them with `make snapshots` and commit tests/regression/."
    )


def test_a_changed_notebook_is_detected(tmp_path, monkeypatch):
    import nbformat

    source = chain.chain()[0]
    nb = nbformat.read(source, as_version=4)
    nb.cells[-1].source += "\n# edited"
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "tests" / "regression").mkdir(parents=True)
    nbformat.write(nb, tmp_path / "notebooks" / source.name)
    nbformat.write(nbformat.read(chain.snapshots_dir() / source.name, as_version=4),
                   tmp_path / "tests" / "regression" / source.name)
    monkeypatch.setenv("SENTIMENT_HOME", str(tmp_path))
    assert chain.stale_snapshots() == [source.stem]
