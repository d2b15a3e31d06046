"""The chat service: an OpenAI-compatible FastAPI app that answers from a tenant's documents through vLLM."""
