"""Per-tenant LoRA adapters: loading into a running vLLM server, and (to come) training and evaluation."""
