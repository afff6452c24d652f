"""The notebook `notebooks/order_outcomes.ipynb`: committed without outputs, and it runs top to
bottom in this environment's Python against a published warehouse found through
`PIPELINE_DATA_DIR`, from the notebooks directory as Jupyter would start it. The warehouse is
built by a short sandbox run: the demo's core path. With nothing set, as the README has it after
`make demo`, it reads the demo's published copy (`data/demo/published/`) unless there is a
`data/published/` one, says which one it read, and says clearly when there is none."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from demo_run import DemoRun
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

REPOSITORY = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPOSITORY / "notebooks"
NOTEBOOK = NOTEBOOKS / "order_outcomes.ipynb"
PUBLISHED = Path("published") / "warehouse.duckdb"
KERNEL = "python3"
# jupyter_client swaps these for the running interpreter (sys.executable) when it starts a kernel.
INTERPRETER_ALIASES = {
    "python",
    f"python{sys.version_info[0]}",
    "python{}.{}".format(*sys.version_info[:2]),
}
TIMEOUT_S = 120


def _use_this_interpreter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Make the `python3` kernel run this venv's Python, with a temporary kernelspec if needed."""
    argv = KernelSpecManager().get_kernel_spec(KERNEL).argv
    executable = argv[0]
    if (
        executable in INTERPRETER_ALIASES
        or Path(executable).resolve() == Path(sys.executable).resolve()
    ):
        return
    spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (this environment)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))


def test_notebook_is_committed_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code
    assert all(not cell.outputs and cell.execution_count is None for cell in code)


def _execute(
    notebook: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    *,
    setup_only: bool = False,
) -> nbformat.NotebookNode:
    """Run `notebook` (or only its first code cell) from its directory, as Jupyter would start it,
    in this environment's Python; the executed notebook (errors are left in the outputs)."""
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "mpl"))
    _use_this_interpreter(monkeypatch, tmp_path)
    nb = nbformat.read(notebook, as_version=4)
    if setup_only:
        nb.cells = [next(cell for cell in nb.cells if cell.cell_type == "code")]
    probe = nbformat.v4.new_code_cell("import sys; print(sys.executable)")
    nb.cells.insert(0, probe)
    client = NotebookClient(
        nb,
        timeout=TIMEOUT_S,
        kernel_name=KERNEL,
        allow_errors=True,
        resources={"metadata": {"path": str(notebook.parent)}},
    )
    client.execute()
    executable = "".join(out.get("text", "") for out in nb.cells[0].outputs).strip()
    assert Path(executable).resolve() == Path(sys.executable).resolve()
    return nb


def _outputs(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [out for cell in nb.cells for out in cell.get("outputs", [])]


def _printed(nb: nbformat.NotebookNode) -> str:
    return "".join(out.get("text", "") for out in _outputs(nb) if out.output_type == "stream")


def _errors(nb: nbformat.NotebookNode) -> list[str]:
    return [f"{out.ename}: {out.evalue}" for out in _outputs(nb) if out.output_type == "error"]


def _checkout(tmp_path: Path) -> Path:
    """A repository root as the notebook recognises one, with no data and no `.env`."""
    root = tmp_path / "checkout"
    (root / "notebooks").mkdir(parents=True)
    shutil.copy(REPOSITORY / "pyproject.toml", root / "pyproject.toml")
    (root / "pipeline").symlink_to(REPOSITORY / "pipeline", target_is_directory=True)
    shutil.copy(NOTEBOOK, root / "notebooks" / NOTEBOOK.name)
    return root


def test_notebook_runs_top_to_bottom(
    demo_run: DemoRun, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Against the warehouse a short sandbox run (the demo's core path) built and published."""
    assert demo_run.returncode == 0, demo_run.stdout + demo_run.stderr
    report_data_dir = demo_run.data_dir
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(report_data_dir))
    nb = _execute(NOTEBOOK, monkeypatch, tmp_path)
    outputs = _outputs(nb)
    assert not _errors(nb)
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(images) >= 3  # time to code, expiry over time, reliability
    published = str(report_data_dir / PUBLISHED)
    assert any(published in str(out.get("data", {}).get("text/plain", "")) for out in outputs)
    assert f"Reading {published} (PIPELINE_DATA_DIR is set)" in _printed(nb)
    text = "".join(str(out.get("data", {}).get("text/plain", "")) for out in outputs)
    assert "sms4sats" in text and "smsonline" in text
    # Durations read in their own unit, as in the report ("5.4 s (4.5–9.7 s)"), never "0.09 min".
    tables = "".join(str(out.get("data", {}).get("text/html", "")) for out in outputs)
    assert "median (95 % CI)" in tables
    assert re.search(r"&quot;[\d.,]+ (s|min|h) \([\d.,]+", tables), tables


def test_after_make_demo_with_nothing_set_it_reads_the_demo_warehouse(
    demo_run: DemoRun, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """As the README has it: `make demo`, then the notebook; no variable set, no data/published."""
    assert demo_run.returncode == 0, demo_run.stdout + demo_run.stderr
    root = _checkout(tmp_path)
    demo_published = root / "data" / "demo" / PUBLISHED
    demo_published.parent.mkdir(parents=True)
    shutil.copy(demo_run.data_dir / PUBLISHED, demo_published)
    monkeypatch.delenv("PIPELINE_DATA_DIR", raising=False)
    nb = _execute(root / "notebooks" / NOTEBOOK.name, monkeypatch, tmp_path)
    assert not _errors(nb)
    assert f"Reading {demo_published} (left by `make demo`" in _printed(nb)
    images = [out for out in _outputs(nb) if "image/png" in out.get("data", {})]
    assert len(images) >= 3


def test_the_pipelines_published_warehouse_comes_before_the_demos(
    demo_run: DemoRun, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert demo_run.returncode == 0, demo_run.stdout + demo_run.stderr
    root = _checkout(tmp_path)
    for data_dir in (root / "data", root / "data" / "demo"):
        (data_dir / PUBLISHED).parent.mkdir(parents=True)
        shutil.copy(demo_run.data_dir / PUBLISHED, data_dir / PUBLISHED)
    monkeypatch.delenv("PIPELINE_DATA_DIR", raising=False)
    nb = _execute(root / "notebooks" / NOTEBOOK.name, monkeypatch, tmp_path, setup_only=True)
    assert not _errors(nb)
    assert f"Reading {root / 'data' / PUBLISHED} (kept by Dagster" in _printed(nb)


def test_without_any_published_warehouse_it_says_what_to_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = _checkout(tmp_path)
    monkeypatch.delenv("PIPELINE_DATA_DIR", raising=False)
    nb = _execute(root / "notebooks" / NOTEBOOK.name, monkeypatch, tmp_path, setup_only=True)
    [error] = _errors(nb)
    assert error.startswith("FileNotFoundError: No published warehouse at")
    assert str(root / "data" / "demo" / PUBLISHED) in error and "make demo" in error
