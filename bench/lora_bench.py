"""What LoRA costs vLLM's throughput, and which lever wins it back (issue 11), measured in one run.

Each set of vLLM flags gets its own server, started one after the other so that no two share the cores. On
each server, every request mix ("load") is measured against base-only requests on that same server, in
pairs, each going first in turn, over several rounds; its ratio is its mean tokens/s over the mean of the base
runs it was paired with. Throughput is completion tokens/s of a burst of requests at concurrency 8. The load
generator runs off vLLM's compute cores, as the service's benchmark does.

The levers: the adapters' rank and target modules; the server's --max-lora-rank (vLLM computes every adapter
at that rank, whatever its own, and accepts 1, 8, 16, 32 and up: never 4) and --lora-target-modules;
--max-loras and --max-cpu-loras against the adapters active; how many distinct adapters share a batch; and an
adapter merged into the weights (PEFT merge_and_unload) served as a plain model. The merged model cannot share
a server with the base model, so it is measured between two plain servers of the base model, and compared
with their mean.

Run: make bench-lora
"""

import argparse
import asyncio
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx

from bench.serve_bench import _batch, _body
from ragserve.adapters.validation import SERVED_TARGET_MODULES
from ragserve.engine.base_model import ensure_base_model
from ragserve.engine.cpu_placement import api_cpus, own_cpus, pin_process
from ragserve.engine.vllm_process import VllmProcess, VllmSpec, free_port
from ragserve.errors import UpstreamError
from ragserve.service.config import BUNDLED_BASE
from tests.support.models import make_lora

QKV = ("q_proj", "k_proj", "v_proj")
QKV_SERVED = ("qkv_proj",)  # vLLM's name for q, k and v, which it fuses
# Adapter kinds: name -> (rank, PEFT target modules). Four of each, with different seeds.
KINDS: dict[str, tuple[int, tuple[str, ...]]] = {
    "r8-qkvo": (8, SERVED_TARGET_MODULES),
    "r4-qkvo": (4, SERVED_TARGET_MODULES),
    "r16-qkvo": (16, SERVED_TARGET_MODULES),
    "r8-qkv": (8, QKV),
}
COPIES = 4


@dataclass(frozen=True)
class Load:
    """Requests spread round-robin over `distinct` adapters of one kind."""

    kind: str
    distinct: int = 4

    @property
    def label(self) -> str:
        return f"{self.distinct} x {self.kind}"

    def adapters(self) -> list[str]:
        return [f"{self.kind}-{i}" for i in range(self.distinct)]


@dataclass(frozen=True)
class Server:
    """One vLLM's flags, and the loads measured on it against its own base-only requests."""

    label: str
    loads: tuple[Load, ...]
    max_lora_rank: int = 16
    max_loras: int = 4
    max_cpu_loras: int = 8
    targets: tuple[str, ...] = ("qkv_proj", "o_proj")
    enable_lora: bool = True


_R8 = Load("r8-qkvo")
SERVERS = [
    Server(
        "defaults: max-lora-rank 16, max-loras 4, qkv+o",
        (_R8, Load("r8-qkvo", 2), Load("r8-qkvo", 1), Load("r4-qkvo"), Load("r16-qkvo"), Load("r8-qkv")),
    ),
    Server("max-lora-rank 8", (_R8,), max_lora_rank=8),
    Server("max-lora-rank 8, qkv only", (Load("r8-qkv"),), max_lora_rank=8, targets=QKV_SERVED),
    Server("max-loras 8", (_R8,), max_loras=8),
    Server("max-loras 2 (forces swaps)", (_R8, Load("r8-qkvo", 2)), max_loras=2),
    Server("max-loras 2, max-cpu-loras 2", (_R8,), max_loras=2, max_cpu_loras=2),
]
PLAIN = Server("no LoRA: the base model", (), enable_lora=False)
MERGED = Server("no LoRA: r8-qkvo-0 merged into the weights", (), enable_lora=False)


def merge_lora(model_dir: Path, adapter: Path, out: Path) -> Path:
    """The adapter merged into the base weights (PEFT merge_and_unload), saved as a full model folder."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    merged.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(model_dir)).save_pretrained(str(out))
    return out


def tokens_per_s(url: str, bodies: list[dict[str, Any]], concurrency: int) -> float:
    t0 = time.perf_counter()
    done = asyncio.run(_batch(url, [(b, "none") for b in bodies], concurrency))
    return sum(r[2] for r in done) / (time.perf_counter() - t0)


def measure(url: str, server: Server, args: argparse.Namespace) -> dict[str, Any]:
    """Base-only tokens/s on this server, and each load's against the base runs it alternated with."""
    base = [_body(BUNDLED_BASE, args.tokens)] * args.requests
    mixes = {
        load.label: [_body(load.adapters()[i % load.distinct], args.tokens) for i in range(args.requests)]
        for load in server.loads
    }
    for bodies in [base, *mixes.values()]:  # warm-up: every adapter used once
        tokens_per_s(url, bodies[:8], args.concurrency)
    runs: dict[str, list[float]] = {"base": []}
    paired: dict[str, list[float]] = {label: [] for label in mixes}
    for round_ in range(args.rounds):
        if not mixes:
            runs["base"].append(tokens_per_s(url, base, args.concurrency))
        for label, bodies in mixes.items():
            pair = [("base", base), (label, bodies)]
            measured = {name: tokens_per_s(url, b, args.concurrency)
                        for name, b in (pair if round_ % 2 == 0 else pair[::-1])}  # fmt: skip
            runs["base"].append(measured["base"])
            paired[label].append(measured["base"])
            runs.setdefault(label, []).append(measured[label])
    result: dict[str, Any] = {"base": _mean(runs["base"])}
    for label in mixes:
        load_mean = _mean(runs[label])
        result[label] = {
            "tokens_per_s": load_mean,
            "base_tokens_per_s": _mean(paired[label]),
            "over_base": round(load_mean / _mean(paired[label]), 3),
            "runs": [round(x, 1) for x in runs[label]],
        }
    return result


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 2)


def serve(server: Server, model_dir: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Starts vLLM with this server's flags, loads its adapters, measures, stops it."""
    all_cpus = own_cpus()
    spec = VllmSpec(model_dir, BUNDLED_BASE, free_port(), server.max_lora_rank, dtype=args.dtype,
                    max_loras=server.max_loras, max_cpu_loras=server.max_cpu_loras,
                    lora_target_modules=server.targets, enable_lora=server.enable_lora)  # fmt: skip
    log = work / f"vllm-{len(list(work.glob('vllm-*.log')))}.log"
    started = time.perf_counter()
    with VllmProcess(spec, log).running(timeout_s=600) as vllm:
        startup = time.perf_counter() - started
        for load in server.loads:
            for name in load.adapters():
                body = {"lora_name": name, "lora_path": str(work / "adapters" / name)}
                response = httpx.post(f"{vllm.url}/v1/load_lora_adapter", json=body, timeout=120)
                if response.status_code != 200 and "already been loaded" not in response.text:
                    response.raise_for_status()
        cpus = api_cpus("auto", vllm.pid)
        if cpus:
            pin_process(cpus)  # off vLLM's compute cores while measuring
        try:
            result = measure(vllm.url, server, args)
        finally:
            if all_cpus:
                pin_process(all_cpus)  # so the next vLLM starts where this one did
    about = {"server": server.label, "startup_s": round(startup, 1), "load_generator_cpus": sorted(cpus)}
    return about | result


def merged_lever(model_dir: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The merged model's base-only tokens/s, on a plain server started between two of the base model."""
    merged_dir = merge_lora(model_dir, work / "adapters" / "r8-qkvo-0", work / "merged")
    before = serve(PLAIN, model_dir, work, args)
    merged = serve(MERGED, merged_dir, work, args)
    after = serve(PLAIN, model_dir, work, args)
    merged["plain_base_runs"] = [before["base"], after["base"]]
    merged["over_plain_base"] = round(merged["base"] / _mean(merged["plain_base_runs"]), 3)
    print(json.dumps(merged), flush=True)
    return merged


def print_table(results: list[dict[str, Any]], merged: dict[str, Any], reference: float) -> None:
    print(f"\n{'server':48} {'load':14} {'tok/s':>7} {'base':>7} {'/base':>6} {'/ref':>6}")
    for name, load, tps, base, ratio, to_ref in rows(results, reference):
        print(f"{name:48} {load:14} {tps:7.1f} {base:7.1f} {ratio:6.3f} {to_ref:6.3f}")
    if merged:
        plain = _mean(merged["plain_base_runs"])
        to_ref = round(merged["base"] / reference, 3) if reference else 0.0
        print(f"{MERGED.label:48} {'base-only':14} {merged['base']:7.1f} {plain:7.1f} "
              f"{merged['over_plain_base']:6.3f} {to_ref:6.3f}")  # fmt: skip
    print("/base: over base-only requests on the same server, alternating (the merged model: over plain")
    print("servers of the base model before and after it); /ref: over the first server's base-only requests")


Row = tuple[str, str, float, float, float, float]


def rows(results: list[dict[str, Any]], reference: float) -> list[Row]:
    """(server, load, tokens/s, base tokens/s on that server, ratio to it, ratio to the reference base)."""
    out = []
    for r in results:
        for label, value in r.items():
            if isinstance(value, dict):
                tps, base = value["tokens_per_s"], value["base_tokens_per_s"]
                out.append((r["server"], label, tps, base, value["over_base"], round(tps / reference, 3)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="alternating pairs of each load and base")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--only", nargs="*", type=int, help="indexes into the LoRA servers; default: all")
    parser.add_argument("--no-merged", action="store_true", help="skip the merged-model servers")
    parser.add_argument("--out", type=Path, default=Path("bench/results/lora.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ragserve-lora-bench-"))
    model_dir = ensure_base_model(BUNDLED_BASE, work / "models")
    servers = [s for i, s in enumerate(SERVERS) if args.only is None or i in args.only]
    kinds = {load.kind for s in servers for load in s.loads} | ({"r8-qkvo"} if not args.no_merged else set())
    for kind in sorted(kinds):
        rank, targets = KINDS[kind]
        for i in range(COPIES):
            make_lora(model_dir, work / "adapters" / f"{kind}-{i}", seed=i, rank=rank, target_modules=targets)
    results: list[dict[str, Any]] = []
    merged: dict[str, Any] = {}
    failed: list[dict[str, str]] = []
    for i, server in enumerate(servers):
        try:
            results.append(serve(server, model_dir, work, args))
        except UpstreamError as e:  # a flag this vLLM refuses: the other servers still say something
            failed.append({"server": server.label, "error": str(e).splitlines()[-1]})
            print(json.dumps(failed[-1]), flush=True)
            continue
        print(json.dumps(results[-1]), flush=True)
        if (
            i == 0 and not args.no_merged
        ):  # next to the first server, so the two kinds of base run close in time
            merged = merged_lever(model_dir, work, args)
    reference = results[0]["base"] if results else 0.0
    report = {"run_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "tokens_per_request": args.tokens,
              "requests": args.requests, "concurrency": args.concurrency, "rounds": args.rounds,
              "dtype": VllmSpec(model_dir, "", 0, 16, dtype=args.dtype).resolved_dtype(),
              "servers": results, "merged": merged, "failed": failed}  # fmt: skip
    print_table(results, merged, reference)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
