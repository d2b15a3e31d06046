"""What the machine's hardware is good at, for choosing precisions by measurement rather than by habit; and
the kernel's notation for a set of CPUs."""

__all__ = ["cpu_has_native_bf16", "parse_cpu_list"]


def cpu_has_native_bf16() -> bool:
    """True on CPUs with bf16 instructions (AVX512-BF16, AMX), where bf16 measured 1.5-2x faster here;
    elsewhere bf16 is emulated and slower than float32."""
    import torch

    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def parse_cpu_list(text: str) -> set[int]:
    """A CPU list in the kernel's notation, such as "1,3-5"."""
    cpus: set[int] = set()
    for part in text.replace(" ", "").split(","):
        low, dash, high = part.partition("-")
        high = high if dash else low
        if not (low.isdigit() and high.isdigit() and int(low) <= int(high)):
            raise ValueError(f"{text!r} is not a CPU list: expected numbers and ranges, such as 1,3-5")
        cpus.update(range(int(low), int(high) + 1))
    return cpus
