"""Without TenSEAL, fairleak works and `fairleak fhe-demo` says how to install it (no traceback)."""

import subprocess
import sys

import pytest

# sys.modules[name] = None makes `import name` raise ImportError, as if it were not installed
_NO_TENSEAL = "import sys; sys.modules['tenseal'] = None; "


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _NO_TENSEAL + code], capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def test_cli_exits_2_naming_the_extra():
    proc = _run("sys.argv = ['fairleak', 'fhe-demo']; from fairleak.cli import main; main()")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "pip install 'fairleak[fhe]'" in proc.stderr and "Traceback" not in proc.stderr


def test_library_imports_and_the_client_names_the_extra():
    proc = _run(
        "import fairleak.fhe as f; import fairleak.cli; print(f.ckks_parameters(2).poly_modulus_degree)\n"
        "try:\n    f.FHEClient(f.ckks_parameters(1))\n"
        "except ImportError as e:\n    print('ImportError:', e)"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("8192") and "ImportError:" in proc.stdout
    assert "pip install 'fairleak[fhe]'" in proc.stdout


@pytest.mark.parametrize("module", ["fairleak.fhe", "fairleak.cli"])
def test_importing_does_not_import_tenseal(module):
    proc = subprocess.run([sys.executable, "-c", f"import sys, {module}; print('tenseal' in sys.modules)"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0 and proc.stdout.strip() == "False", proc.stderr[-2000:]
