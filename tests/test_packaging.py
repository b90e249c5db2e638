"""The distribution ships kernels/ as tritonlayers.kernels (never a top-level `kernels` module, which would
collide with an unrelated PyPI package), from a wheel and from an editable install."""
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Prints where the packages come from, and whether a top-level `kernels` exists at all.
PROBE = """
import importlib.util, tritonlayers, tritonlayers.kernels, tritonlayers.kernels.softmax
print(tritonlayers.__file__)
print(tritonlayers.kernels.__file__)
print(importlib.util.find_spec("kernels"))
"""


def _fresh_venv(path):
    """A new venv that sees this environment's site-packages (torch, triton, setuptools) through a .pth
    line, without running its .pth files: this environment's own install of tritonlayers stays invisible."""
    venv.EnvBuilder(with_pip=False).create(path)  # pip and setuptools come from this environment too
    python = path / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    ours = [entry for entry in sys.path if entry.endswith(("site-packages", "dist-packages"))]
    Path(site, "parent_env.pth").write_text("\n".join(ours) + "\n")
    return python


def _pip(python, *args, cwd):
    result = subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", *args], cwd=cwd,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _probe(python, cwd):
    result = subprocess.run([python, "-c", PROBE], cwd=cwd, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "TRITON_INTERPRET": "1"})
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                             "-w", str(out), str(REPO)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    (path,) = out.glob("tritonlayers-*.whl")
    return path


def test_wheel_maps_kernels_inside_the_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "tritonlayers/kernels/__init__.py" in names
    assert "tritonlayers/kernels/softmax.py" in names
    assert not [name for name in names if name.startswith("kernels/")]
    assert not [name for name in names if name.startswith(("tests/", "perf/"))]


def test_wheel_installs_into_fresh_venv(wheel, tmp_path):
    python = _fresh_venv(tmp_path / "venv")
    _pip(python, str(wheel), cwd=tmp_path)
    package, kernels, top_level_kernels = _probe(python, cwd=tmp_path)
    site = str(tmp_path / "venv")
    assert package.startswith(site) and kernels.startswith(site)
    assert kernels.endswith("tritonlayers/kernels/__init__.py")
    assert top_level_kernels == "None"


def test_editable_install_maps_kernels_to_the_source_tree(tmp_path):
    python = _fresh_venv(tmp_path / "venv")
    _pip(python, "--no-build-isolation", "-e", str(REPO), cwd=tmp_path)
    package, kernels, top_level_kernels = _probe(python, cwd=tmp_path)
    assert package == str(REPO / "tritonlayers" / "__init__.py")
    assert kernels == str(REPO / "kernels" / "__init__.py")
    assert top_level_kernels == "None"
