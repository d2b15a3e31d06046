"""What the machine's hardware is good at, for choosing precisions by measurement rather than by habit."""

__all__ = ["cpu_has_native_bf16"]


def cpu_has_native_bf16() -> bool:
    """True on CPUs with bf16 instructions (AVX512-BF16, AMX), where bf16 measured 1.5-2x faster here;
    elsewhere bf16 is emulated and slower than float32."""
    import torch

    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
