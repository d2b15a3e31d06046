"""The eval report, in three forms: JSON for machines, Markdown to read, a PNG bar chart to look at."""

import json
from pathlib import Path
from typing import Any

from ragserve.adapters.evaluation import SETUPS, SetupScore

__all__ = ["eval_json", "write_report"]

_LABELS = {
    "base": "base, no instructions",
    "prompted": "base + house-style instructions",
    "few_shot": "base + instructions + few-shot",
    "adapter": "LoRA adapter",
}


def eval_json(scores: dict[str, SetupScore], meta: dict[str, Any]) -> dict[str, Any]:
    return {**{setup: scores[setup].to_json() for setup in SETUPS}, "meta": meta}


def write_report(folder: Path, report: dict[str, Any]) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "eval.json", "markdown": folder / "eval.md", "chart": folder / "eval.png"}
    paths["json"].write_text(json.dumps(report, indent=2) + "\n")
    _chart(paths["chart"], report)
    paths["markdown"].write_text(_markdown(report, paths["chart"].name))
    return paths


def _markdown(report: dict[str, Any], chart: str) -> str:
    meta = report["meta"]
    lines = [
        f"# Eval of {meta['adapter']}",
        "",
        f"Base model `{meta['base_model']}`; {meta['examples']} held-out examples of `{meta['dataset']}`; "
        f"greedy decoding, at most {meta['max_tokens']} tokens.",
        "",
        f"![scores]({chart})",
        "",
        "| set-up | format adherence | similarity (ROUGE-L) | prompt tokens | latency p50 (ms) |",
        "|---|---|---|---|---|",
    ]
    for setup in SETUPS:
        row = report[setup]
        adherence = "n/a" if row["format_adherence"] is None else f"{row['format_adherence']:.0%}"
        lines.append(
            f"| {_LABELS[setup]} | {adherence} | {row['similarity']:.3f} | {row['prompt_tokens']:.0f} "
            f"| {row['latency_p50_ms']:.0f} |"
        )
    lines += ["", "## First replies", ""]
    for setup in SETUPS:
        lines.append(f"**{_LABELS[setup]}**")
        lines += ["", *(f"```\n{sample}\n```" for sample in report[setup]["samples"]), ""]
    return "\n".join(lines)


def _chart(path: Path, report: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [("format_adherence", "format adherence"), ("similarity", "similarity (ROUGE-L F1)")]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, (key, title) in zip(axes, metrics, strict=True):
        values = [report[s][key] or 0.0 for s in SETUPS]
        bars = ax.bar(range(len(SETUPS)), values, color=["#9aa5b1", "#7b8794", "#52606d", "#d9480f"])
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in values])
        ax.set_xticks(range(len(SETUPS)), [_LABELS[s].replace(" + ", "\n+ ") for s in SETUPS], fontsize=7)
        ax.set_ylim(0, 1.1)
        ax.set_title(title)
    fig.suptitle(f"{report['meta']['adapter']}: held-out split, {report['meta']['examples']} examples")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
