"""The model server's side, apart from HTTP: the bundled base model converted for vLLM, the vLLM process
itself, and the CPU cores it and the API run on. The CLI, the stack start-up and the benchmarks use it."""
