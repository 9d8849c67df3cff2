"""The runner: a misspelt parameter fails at once naming the closest one, a failing notebook is named by the
line that raised, and one run at a time writes a run directory (a lock, taken over when its process died)."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import nbformat
import pytest

from sentiment_lib.runtime import lock as run_lock
from sentiment_lib import chain, config, pipeline, profiles, rundir
from sentiment_lib.__main__ import main


def test_a_misspelt_run_parameter_fails_before_anything_runs(capsys):
    assert main(["run", "--profile", "smoke", "--only", "02", "-p", "MAXLEN", "5"]) == 1
    err = capsys.readouterr().err
    assert "Unknown parameter(s) MAXLEN" in err and "did you mean MAX_LEN?" in err and "VOCAB_SIZE" in err
    assert not (config.report_dir("smoke") / "02_preprocessing.ipynb").exists()
    assert main(["run", "--profile", "smoke", "--only", "02", "-p", "MAX_LEN", "5"]) == 1
    err = capsys.readouterr().err  # a training parameter given to the data notebook alone
    assert "MAX_LEN is a parameter of 03_baseline, 04_improvements, not of 02_preprocessing: run those" in err


@pytest.mark.parametrize("name, value, fix", [("EPOCHS", "0", "-p EPOCHS 6"), ("LR", "abc", "-p LR 0.001"),
                                              ("BATCH_SIZE", "0", "-p BATCH_SIZE 128"),
                                              ("TRUNCATION", "middle", "'head', 'tail', 'head+tail'")])
def test_a_bad_parameter_value_fails_before_any_kernel_starts(capsys, name, value, fix):
    report = config.report_dir("smoke")
    report.mkdir(parents=True)
    (report / "03_baseline.ipynb").write_text("the last good page")
    started = time.perf_counter()
    assert main(["run", "--profile", "smoke", "--only", "03", "-p", name, value]) == 1
    err = capsys.readouterr().err
    assert name in err and fix in err and "Nothing was run" in err
    assert time.perf_counter() - started < 10  # no kernel was started
    assert [p.name for p in report.iterdir()] == ["03_baseline.ipynb"]
    assert (report / "03_baseline.ipynb").read_text() == "the last good page"


def test_each_notebook_gets_only_the_parameters_it_declares():
    notebooks = chain.chain(["02", "03"])
    shares = pipeline.check_parameters(notebooks, {"PROFILE": "smoke", "MAX_LEN": 64, "VOCAB_SIZE": 900})
    by_name = {path.stem: share for path, share in shares.items()}
    assert by_name["02_preprocessing"] == {"PROFILE": "smoke", "VOCAB_SIZE": 900}  # 02 stores reviews whole
    assert by_name["03_baseline"] == {"PROFILE": "smoke", "MAX_LEN": 64}


def test_a_misspelt_papermill_parameter_is_refused_inside_the_notebook():
    history = ["", 'PROFILE = "quick"\nMAX_LEN = None\n', '# Parameters\nPROFILE = "smoke"\nMAXLEN = 5\n']
    with pytest.raises(ValueError, match="MAXLEN → did you mean MAX_LEN"):
        profiles.check_injected(history)
    profiles.check_injected(history[:2])  # no injected cell (Jupyter, nbval): nothing to check
    profiles.check_injected(["", "PROFILE = 1", "# Parameters\nPROFILE = 2\n"])


def test_every_notebook_checks_what_papermill_injected():
    for source in chain.chain():
        nb = nbformat.read(source, as_version=4)
        code = [c.source for c in nb.cells if c.cell_type == "code"]
        assert "profiles.check_injected(In)" in code[1], source.stem  # the first cell after the parameters


def test_a_failing_notebook_is_named_by_the_line_that_raised(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("%matplotlib inline\nx = 1\nraise ValueError('MAX_LEN must be positive')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    source = tmp_path / "failing.ipynb"
    nbformat.write(nb, source)
    with pytest.raises(pipeline.ChainError, match=r"code cell 1, line 3 \(`raise ValueError\('MAX_LEN must be"):
        pipeline.execute(source, tmp_path / "out.ipynb", {}, progress=False, record=False)


HOLDER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from sentiment_lib.runtime import lock as run_lock
    with run_lock.lock("smoke"):
        print("locked", flush=True)
        time.sleep(120)
""")


def _hold_the_lock():
    child = subprocess.Popen([sys.executable, "-c", HOLDER.format(root=str(config.project_root()))],
                             stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    assert child.stdout.readline().strip() == "locked"
    return child


@pytest.mark.slow  # a second Python process
def test_a_second_run_on_a_run_directory_in_use_fails_at_once_naming_the_other(capsys):
    child = _hold_the_lock()
    try:
        started = time.perf_counter()
        assert main(["run", "--profile", "smoke", "--only", "01"]) == 1
        err = capsys.readouterr().err
        assert f"in use by process {child.pid}" in err and f"kill {child.pid}" in err
        assert time.perf_counter() - started < 30  # at once, not after running a notebook
        assert not config.report_dir("smoke").exists()  # a refused run writes nothing, not even the site
        with run_lock.lock("quick"):  # another profile: side by side
            pass
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    # The killed process left its lock behind: the next run takes it over.
    assert (config.run_dir("smoke") / run_lock.LOCK_FILE).exists()
    with run_lock.lock("smoke") as path:
        assert f'"pid": {os.getpid()}' in path.read_text()
    assert not path.exists()


def test_reports_carry_no_solutions_or_hidden_tests(tmp_path):
    source = textwrap.dedent("""\
        def f(x):
            \"\"\"Doc.\"\"\"
            ### BEGIN SOLUTION
            return x + 1
            ### END SOLUTION
        """)
    test = "assert f(1) == 2\n### BEGIN HIDDEN TESTS\nfrom classroom import checks\ncheck(f)\n### END HIDDEN TESTS\n"
    redacted = chain.redact_source(source)
    assert "return x + 1" not in redacted and "SOLUTION" not in redacted
    assert "    raise NotImplementedError()" in redacted and redacted.startswith('def f(x):\n    """Doc."""')
    assert chain.redact_source(test) == "assert f(1) == 2"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source), nbformat.v4.new_code_cell(test)])
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    assert chain.redact_solutions(path) and not chain.redact_solutions(path)  # nothing left the second time
    assert chain.cells_of(path) == chain.cells_of(path, redact=True)


def test_the_committed_reports_hold_no_solution_code():
    leaks = []
    for page in sorted((config.project_root() / "reports").glob("*/*")):
        if page.suffix in (".ipynb", ".html"):
            text = page.read_text(encoding="utf-8")
            leaks += [f"{page.name}: {marker}" for marker in ("BEGIN SOLUTION", "HIDDEN TESTS", "classroom import checks")
                      if marker in text]
    assert not leaks, leaks


def _chain_of(folder, cells):
    """Notebooks ``01_eda`` … in ``folder``, one per code ``cells`` entry, each with a parameters cell."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, code in zip(chain.NOTEBOOKS, cells):
        nb = nbformat.v4.new_notebook()
        params = nbformat.v4.new_code_cell('PROFILE = "smoke"')
        params.metadata["tags"] = ["parameters"]
        nb.cells = [nbformat.v4.new_markdown_cell(f"# {name}"), params, nbformat.v4.new_code_cell(code)]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, folder / f"{name}.ipynb")


@pytest.mark.slow  # two kernels
def test_a_failing_notebook_leaves_the_report_as_it_was(tmp_path, monkeypatch):
    sources = tmp_path / "notebooks"
    monkeypatch.setattr(chain, "notebooks_dir", lambda: sources)
    report = tmp_path / "report"
    _chain_of(sources, ["print('one')", "print('two')"])
    pipeline.run_chain("smoke", out_dir=report, progress=False)
    before = {p.name: p.read_bytes() for p in report.iterdir()}
    assert {"01_eda.ipynb", "02_preprocessing.ipynb", "01_eda.html", "index.html"} <= set(before)
    _chain_of(sources, ["print('one again')", "raise ValueError('EPOCHS must be a positive integer, got 0')"])
    with pytest.raises(pipeline.ChainError, match="executed copy, with the traceback, is at") as err:
        pipeline.run_chain("smoke", names=["02"], out_dir=report, progress=False)
    staged = pipeline.staging_dir("smoke") / "02_preprocessing.ipynb"
    assert str(staged) in str(err.value) and "EPOCHS must be" in staged.read_text()
    assert {p.name: p.read_bytes() for p in report.iterdir()} == before  # every page byte-identical
    # a notebook that finishes replaces only its own page
    pipeline.run_chain("smoke", names=["01"], out_dir=report, progress=False)
    assert "one again" in (report / "01_eda.ipynb").read_text()
    assert (report / "02_preprocessing.ipynb").read_bytes() == before["02_preprocessing.ipynb"]


def test_run_only_needs_names():
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--profile", "smoke", "--only"])
    assert exit_.value.code == 2


def test_an_interrupted_run_leaves_the_report_and_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    report = config.report_dir("smoke")
    report.mkdir(parents=True)
    (report / "03_baseline.ipynb").write_text("the last good page")

    def interrupted(source, dest, *args, **kwargs):
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text("half a notebook")  # what papermill had written when Ctrl-C came
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "execute", interrupted)
    assert main(["run", "--profile", "smoke", "--only", "03"]) == 130
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("interrupted: the report in reports/smoke/ is as it was")
    assert str(pipeline.staging_dir("smoke")) in err
    assert [p.name for p in report.iterdir()] == ["03_baseline.ipynb"]
    assert (report / "03_baseline.ipynb").read_text() == "the last good page"
    assert (pipeline.staging_dir("smoke") / "03_baseline.ipynb").read_text() == "half a notebook"


def test_notebook_kernels_talk_over_ipc_not_tcp(tmp_path, capfd):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("from ipykernel.kernelapp import IPKernelApp\n"
                                          "print(IPKernelApp.instance().transport)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "probe.ipynb")
    pipeline.execute(tmp_path / "probe.ipynb", tmp_path / "out.ipynb", {}, progress=False, record=False)
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert out.cells[0].outputs[0]["text"].strip() == "ipc"
    assert "running over TCP" not in capfd.readouterr().err


def test_snapshots_are_written_without_progress_bars(monkeypatch, tmp_path):
    """The kernels of `snapshots` inherit SENTIMENT_PROGRESS=0 whatever the shell had: a progress bar in a snapshot
    is an output nbval would compare (and fail on) under `make test`."""
    seen = {}

    def fake_chain(profile, names, **options):
        seen.update(profile=profile, progress=os.environ.get("SENTIMENT_PROGRESS"),
                    artifacts=os.environ.get("SENTIMENT_ARTIFACTS"))
        return {}

    monkeypatch.setenv("SENTIMENT_PROGRESS", "1")
    for name in ("SENTIMENT_ARTIFACTS", "SENTIMENT_REPORTS"):
        monkeypatch.setenv(name, str(tmp_path / name))  # restored after the test, as SENTIMENT_PROGRESS is
    for name in config.PORTABLE_KERNELS:
        monkeypatch.setenv(name, "left by the shell")
    # restored after the test too: the preloaded math must not reach the workers later tests start
    monkeypatch.setenv("LD_PRELOAD", os.environ.get("LD_PRELOAD", ""))
    monkeypatch.setattr(pipeline, "run_chain", fake_chain)
    pipeline.write_snapshots(["02"])
    assert seen["profile"] == "smoke" and seen["progress"] == "0"
    assert not config.progress_enabled()
    assert {name: os.environ[name] for name in config.PORTABLE_KERNELS} == config.PORTABLE_KERNELS


def test_the_portable_environment_gives_a_process_torchs_portable_kernels():
    """What the snapshots' kernels get: torch started in it runs its scalar build, whatever this CPU has, takes a
    float tensor's sqrt from the preloaded C library (correctly rounded; MKL's vector math, which torch calls
    otherwise, rounds about 1 result in 6 differently on the AMD EPYCs measured), and the rest of the environment
    is kept."""
    probe = ("import os, numpy as np, torch\n"
             "x = torch.rand(100000, generator=torch.Generator().manual_seed(0)) * 100\n"
             "exact = np.sqrt(x.numpy().astype(np.float64)).astype(np.float32)\n"
             "print(torch.backends.cpu.get_cpu_capability(), os.environ['PROBE'],"
             " int((x.sqrt().numpy() != exact).sum()))")
    environment = pipeline.portable_environment({**os.environ, "PROBE": "kept", "ATEN_CPU_CAPABILITY": "avx2"})
    shown = subprocess.run([sys.executable, "-c", probe], env=environment, capture_output=True, text=True,
                           check=True).stdout.split()
    assert shown == ["DEFAULT", "kept", "0"]  # torch's sqrt from the C library (correctly rounded), not MKL's



def test_the_runs_own_outputs_are_not_uncommitted_changes_of_the_code(tmp_path, monkeypatch):
    import subprocess

    from sentiment_lib.pipeline import git_commit

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    for name in ("code.py", "reports/quick/index.html", "docs/results.md", "docs/other.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("one")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "start")
    monkeypatch.setenv("SENTIMENT_HOME", str(tmp_path))
    commit, dirty = git_commit()
    assert commit and not dirty
    (tmp_path / "reports/quick/index.html").write_text("two")
    (tmp_path / "docs/results.md").write_text("two")
    assert git_commit() == (commit, False)  # what the run and `results` write
    (tmp_path / "docs/other.md").write_text("two")
    assert git_commit() == (commit, True)
