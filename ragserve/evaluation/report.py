"""The answers report, in three forms: `answers.json` for machines, `answers.md` to read, `answers.png`."""

import json
from pathlib import Path
from typing import Any

__all__ = ["CHART_METRICS", "format_metric", "write_report"]

CHART_METRICS = (
    ("answer_accuracy", "answer accuracy"),
    ("refusal_accuracy", "refusal accuracy"),
    ("source_cited", "expected source cited"),
)
_TABLE = ("answer_accuracy", "refusal_accuracy", "confidently_wrong", "source_retrieved", "source_cited",
          "supported", "support_right", "support_wrong", "support_auroc", "replaced", "latency_p50_ms",
          "prompt_tokens_mean")  # fmt: skip
_RETRIEVAL_TABLE = ("hit_at_1", "hit_at_5", "mrr_at_5")


def write_report(folder: Path, report: dict[str, Any]) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": folder / "answers.json",
        "markdown": folder / "answers.md",
        "chart": folder / "answers.png",
    }
    paths["json"].write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    _chart(paths["chart"], report)
    paths["markdown"].write_text(_markdown(report, paths["chart"].name), encoding="utf-8")
    return paths


def format_metric(value: Any) -> str:
    """A share as 0.62, a count as 28, milliseconds or tokens as whole numbers, a missing one as n/a."""
    if value is None:
        return "n/a"
    if isinstance(value, float) and value <= 1.0:
        return f"{value:.2f}"
    return f"{value:.0f}" if isinstance(value, float) else str(value)


def _text(value: str, limit: int = 160) -> str:
    flat = " ".join(value.split()).replace("|", "\\|")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _markdown(report: dict[str, Any], chart: str) -> str:
    setups: dict[str, Any] = report["setups"]
    retrieval = report.get("mode") == "retrieval"
    table = _RETRIEVAL_TABLE if retrieval else _TABLE
    lines = [
        f"# {'Retrieval' if retrieval else 'Answers'} of tenant {report['tenant']}",
        "",
        f"{report['questions']} labelled questions from `{report['qa_file']}`, "
        + ("ranked by the index's hybrid search." if retrieval else "asked through the chat API."),
        "",
        f"![scores]({chart})",
        "",
        "| set-up | " + " | ".join(table) + " |",
        "|---|" + "---|" * len(table),
    ]
    lines += [
        f"| {name} | " + " | ".join(format_metric(m.get(k)) for k in table) + " |"
        for name, m in setups.items()
    ]
    if retrieval:
        lines += ["", "| id | rank of the first expected source | question |", "|---|---|---|"]
        rows = next(iter(report["results"].values()))
        lines += [f"| {r['id']} | {r['rank'] or '-'} | {_text(r['question'])} |" for r in rows]
        return "\n".join(lines) + "\n"
    for name, rows in report["results"].items():
        lines += [
            "",
            f"## {name}",
            "",
            "| id | right | refused | source cited | answer |",
            "|---|---|---|---|---|",
        ]
        for r in rows:
            right = "refusal expected" if r["unanswerable"] else ("yes" if r["matched"] else "**no**")
            answer = r["error"] or r["answer"]
            lines.append(
                f"| {r['id']} | {right} | {'yes' if r['refused'] else 'no'} "
                f"| {'yes' if r['source_cited'] else 'no'} | {_text(answer)} |"
            )
    return "\n".join(lines) + "\n"


def _chart(path: Path, report: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["setups"])
    metrics = (
        [(k, k.replace("_", " ")) for k in _RETRIEVAL_TABLE]
        if report.get("mode") == "retrieval"
        else CHART_METRICS
    )
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(names) * len(metrics) / 2), 4))
    width = 0.8 / len(metrics)
    for i, (key, label) in enumerate(metrics):
        values = [report["setups"][n].get(key) or 0.0 for n in names]
        bars = ax.bar([x + i * width for x in range(len(names))], values, width, label=label)
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=7)
    ax.set_xticks([x + width * (len(metrics) - 1) / 2 for x in range(len(names))], names, fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(f"tenant {report['tenant']}: {report['questions']} labelled questions")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
