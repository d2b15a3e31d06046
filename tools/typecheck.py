"""mypy over the tree, with `service/`, `ingest/` and `adapters/` named as they install.

setup.py installs those top-level folders as `ragserve.service`, `ragserve.ingest` and
`ragserve.adapters`. mypy names a file by its folders (service/app.py would be `service.app`), and it
cannot follow the import hook an editable install maps them with (python/mypy#13392), so plain `mypy`
would see `ragserve.service` as missing. This is mypy's own command line and build; the one change is that
a file whose top-level folder installs under `ragserve` (as the installed package itself reports) is
checked under that name. Messages name the real files.

    python tools/typecheck.py ragserve service ingest adapters tests bench docs tools
"""

from __future__ import annotations

import importlib.util
import sys
import time
from functools import cache
from pathlib import Path

from mypy import util
from mypy.fscache import FileSystemCache
from mypy.main import process_options, run_build
from mypy.modulefinder import BuildSource

PACKAGE = "ragserve"


@cache
def installs_under_package(top: str) -> bool:
    """Whether the top-level folder `top` is what `ragserve.<top>` imports from."""
    if top == PACKAGE:
        return False
    spec = importlib.util.find_spec(f"{PACKAGE}.{top}") if top.isidentifier() else None
    locations = spec.submodule_search_locations if spec else None
    return bool(locations) and Path(next(iter(locations or []))).resolve() == Path(top).resolve()


def installed_name(source: BuildSource) -> BuildSource:
    top = source.module.partition(".")[0]
    if not installs_under_package(top):
        return source
    renamed = f"{PACKAGE}.{source.module}"
    return BuildSource(source.path, renamed, source.text, source.base_dir, source.followed)


def main(args: list[str]) -> int:
    started = time.time()
    fscache = FileSystemCache()
    sources, options = process_options(args, fscache=fscache)
    sources = [installed_name(source) for source in sources]
    _, messages, blockers = run_build(sources, options, fscache, started, sys.stdout, sys.stderr)
    formatter = util.FancyFormatter(sys.stdout, sys.stderr, options.hide_error_codes)
    n_errors, n_notes, n_files = util.count_stats(messages)
    if n_errors:
        print(formatter.format_error(n_errors, n_files, len(sources), blockers=blockers))
    else:
        print(formatter.format_success(len(sources)))
    if messages and n_notes < len(messages):
        return 2 if blockers else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
