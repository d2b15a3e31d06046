"""What pyproject.toml cannot say on its own: `service/`, `ingest/` and `adapters/` sit at the top of the
repository and install, with their subpackages, as `ragserve.service`, `ragserve.ingest` and
`ragserve.adapters` (top-level names like `adapters` belong to other PyPI packages). The rest is in
pyproject.toml."""

from setuptools import find_namespace_packages, setup

TOP_LEVEL = ("service", "ingest", "adapters")

setup(
    # Namespace discovery, so the data folders (service/playground, adapters/bundled/...) are packages too.
    packages=[
        f"ragserve.{name}" if name.partition(".")[0] in TOP_LEVEL else name
        for name in find_namespace_packages(
            include=["ragserve", "ragserve.*", *TOP_LEVEL, *(f"{top}.*" for top in TOP_LEVEL)],
            exclude=["*__pycache__"],
        )
    ],
    package_dir={f"ragserve.{top}": top for top in TOP_LEVEL},
)
