"""Everything that starts things: the base model, vLLM or its replicas, the index, the app. `ragserve up`,
the answer eval and the adapter commands start through here, so there is one start-up sequence."""
