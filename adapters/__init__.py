"""Per-tenant LoRA adapters: datasets, training, evaluation against prompting, validation, the versioned
registry, and the hot swap into a running vLLM server."""
