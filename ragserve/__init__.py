"""ragserve: a company chatbot that knows the company's documents and speaks in each tenant's voice."""

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("ragserve")  # one home: pyproject.toml, through the installed package's metadata
except PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0+unknown"
