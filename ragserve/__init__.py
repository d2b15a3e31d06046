"""ragserve: a company chatbot that knows the company's documents and speaks in each tenant's voice."""

__all__ = ["__version__"]

__version__ = "0.1.0"
