"""Builds the real-manual QA sets: Debian's documentation packages fetched, the listed pages copied out.

Each set is a product manual that nobody on this project wrote, with questions written from it
(`<name>.qa.jsonl` beside this file) and the pages the bot indexes (`<name>.pages.txt`). The pages are not in
the repository: this fetches the package with `apt-get download` (from the machine's Debian mirror), unpacks
it with `dpkg-deb`, and copies the listed pages to OUT/<name>/docs. It also writes OUT/ragserve.toml, one
tenant per manual, for `ragserve eval answers` (`make eval-manuals` runs both).

    python examples/manuals/build_sets.py [--out .data/manuals]
"""

import argparse
import gzip
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
# name: (Debian package, where its pages lie inside the package)
MANUALS = {
    "apache": ("apache2-doc", "usr/share/doc/apache2-doc/manual/en"),
    "postgresql": ("postgresql-doc-15", "usr/share/doc/postgresql-doc-15/html"),
}


def _run(command: list[str], cwd: Path) -> None:
    try:
        subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True)
    except FileNotFoundError:
        sys.exit(f"{command[0]} is not installed: this script needs a Debian system (apt-get, dpkg-deb)")
    except subprocess.CalledProcessError as exc:
        sys.exit(f"{' '.join(command)} failed: {exc.stderr.strip() or exc.stdout.strip()}")


def _unpacked(package: str, work: Path) -> Path:
    _run(["apt-get", "download", package], work)
    [deb] = sorted(work.glob(f"{package}_*.deb"))
    root = work / package
    _run(["dpkg-deb", "-x", str(deb), str(root)], work)
    return root


def build(name: str, out: Path, work: Path) -> int:
    package, pages_root = MANUALS[name]
    source = _unpacked(package, work) / pages_root
    docs = out / name / "docs"
    shutil.rmtree(docs, ignore_errors=True)
    pages = [p.strip() for p in (HERE / f"{name}.pages.txt").read_text().splitlines() if p.strip()]
    for page in pages:
        target = docs / page
        target.parent.mkdir(parents=True, exist_ok=True)
        plain, packed = source / page, source / f"{page}.gz"
        if plain.exists():
            shutil.copyfile(plain.resolve(), target)
        elif packed.exists():
            target.write_bytes(gzip.decompress(packed.read_bytes()))
        else:
            sys.exit(f"{name}: {page} is not in {package}")
    shutil.copyfile(HERE / f"{name}.qa.jsonl", out / name / "qa.jsonl")
    return len(pages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(".data/manuals"))
    args = parser.parse_args()
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    tenants = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in MANUALS:
            count = build(name, out, Path(tmp))
            print(f"{name}: {count} pages in {out / name / 'docs'}, questions in {out / name / 'qa.jsonl'}")
            tenants.append(f'[tenants.{name}]\napi_key = "{name}-eval-key"\ndocs = "{name}/docs"\n')
    (out / "ragserve.toml").write_text(
        "# Written by examples/manuals/build_sets.py.\n\n" + "\n".join(tenants)
    )


if __name__ == "__main__":
    main()
