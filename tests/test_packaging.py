"""The install: one import namespace (ragserve.service, ragserve.ingest, ragserve.adapters) and nothing of
ours at the top level, where it would shadow another package (`adapters` is also AdapterHub's on PyPI)."""

import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

import ragserve
from ragserve.adapters import registry
from ragserve.ingest import index
from ragserve.service import app


def _python(code: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_no_top_level_package_of_ours_besides_ragserve(tmp_path: Path) -> None:
    ours = "('service', 'ingest', 'adapters')"
    code = f"import importlib.util as u; print([n for n in {ours} if u.find_spec(n)])"
    assert _python(code, tmp_path) == "[]"
    namespace = "import ragserve.service, ragserve.ingest, ragserve.adapters; print('ok')"
    assert _python(namespace, tmp_path) == "ok"


def test_the_three_packages_load_from_the_repository_folders() -> None:
    root = Path(ragserve.__file__).resolve().parent.parent
    assert Path(app.__file__).resolve() == root / "service" / "app.py"
    assert Path(index.__file__).resolve() == root / "ingest" / "index.py"
    assert Path(registry.__file__).resolve() == root / "adapters" / "registry.py"


def test_the_version_has_one_home_pyproject() -> None:
    assert ragserve.__version__ == version("ragserve")
    assert app.create_app.__module__ == "ragserve.service.app"


def test_the_wheel_holds_one_copy_of_each_folder_under_ragserve(tmp_path: Path) -> None:
    root = Path(ragserve.__file__).resolve().parent.parent
    assert not any(p.is_symlink() for p in (root / "ragserve").iterdir())
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip_wheel, "-w", str(tmp_path), str(root)], capture_output=True, check=True)
    (wheel,) = tmp_path.glob("ragserve-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("service", "ingest", "adapters"):
        ours = {p.relative_to(root).as_posix() for p in (root / folder).rglob("*") if p.is_file()}
        shipped = {n.removeprefix("ragserve/") for n in names if n.startswith(f"ragserve/{folder}/")}
        assert shipped == {n for n in ours if "__pycache__" not in n}
    assert not [n for n in names if n.split("/")[0] in ("service", "ingest", "adapters")]
