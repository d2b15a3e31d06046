"""A replica's queue, read from its vLLM's Prometheus page."""

from ragserve.engine.replica_board import queue_depth

PAGE = """# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="smollm2"} 3.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="smollm2"} 12.0
vllm:lora_requests_info{max_lora="4",running_lora_adapters="t0",waiting_lora_adapters=""} 1.7e+09
"""


def test_running_and_waiting_come_from_vllms_gauges() -> None:
    assert queue_depth(PAGE) == (3.0, 12.0)


def test_a_page_without_them_reads_as_an_empty_queue() -> None:
    assert queue_depth("# nothing here\n") == (0.0, 0.0)
