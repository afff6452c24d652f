"""The notebook `notebooks/order_outcomes.ipynb`: committed without outputs, and it runs top to
bottom in this environment's Python against a published warehouse found through
`PIPELINE_DATA_DIR`, from the notebooks directory as Jupyter would start it. The warehouse is
built by a short sandbox run: the demo's core path."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from demo_run import DemoRun
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOK = NOTEBOOKS / "order_outcomes.ipynb"
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


def test_notebook_runs_top_to_bottom(
    demo_run: DemoRun, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Against the warehouse a short sandbox run (the demo's core path) built and published."""
    assert demo_run.returncode == 0, demo_run.stdout + demo_run.stderr
    report_data_dir = demo_run.data_dir
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(report_data_dir))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "mpl"))
    _use_this_interpreter(monkeypatch, tmp_path)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    probe = nbformat.v4.new_code_cell("import sys; print(sys.executable)")
    nb.cells.insert(0, probe)
    client = NotebookClient(
        nb,
        timeout=TIMEOUT_S,
        kernel_name=KERNEL,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()
    executable = "".join(out.get("text", "") for out in nb.cells[0].outputs).strip()
    assert Path(executable).resolve() == Path(sys.executable).resolve()
    outputs = [out for cell in nb.cells for out in cell.get("outputs", [])]
    assert not [out for out in outputs if out.output_type == "error"]
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(images) >= 3  # time to code, expiry over time, reliability
    published = str(report_data_dir / "published" / "warehouse.duckdb")
    assert any(published in str(out.get("data", {}).get("text/plain", "")) for out in outputs)
    text = "".join(str(out.get("data", {}).get("text/plain", "")) for out in outputs)
    assert "sms4sats" in text and "smsonline" in text
