"""Documents for tests and benchmarks: one file, a real (minimal) PDF, and a synthetic company corpus."""

import random
from pathlib import Path

__all__ = ["make_corpus", "write", "write_pdf"]


def write(root: Path, rel: str, text: str) -> Path:
    """Writes `text` to `root/rel`, making its folders."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write_pdf(path: Path, pages: list[list[str]]) -> None:
    """Writes a valid PDF with one Helvetica text line per string; pypdf extracts the text back."""
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]
    kids = []
    for lines in pages:
        body = ["BT /F1 11 Tf 72 760 Td 14 TL"]
        for line in lines:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            body.append(f"({escaped}) Tj T*")
        body.append("ET")
        stream = "\n".join(body).encode("latin-1")
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        content_id = len(objects)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
            b"/Resources << /Font << /F1 FONT 0 R >> >> >>" % content_id
        )
        kids.append(len(objects))
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    font_id = len(objects)
    objects = [o.replace(b"FONT", str(font_id).encode()) for o in objects]
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        " ".join(f"{k} 0 R" for k in kids).encode(),
        len(kids),
    )
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))


_TOPICS = [
    "billing",
    "shipping",
    "returns",
    "warranty",
    "onboarding",
    "security",
    "pricing",
    "support",
    "maintenance",
    "integrations",
    "accounts",
    "privacy",
    "reporting",
    "hardware",
    "training",
]
_WORDS = (
    "customer order invoice account device robot sensor battery firmware update team plan contract "
    "payment refund delivery warehouse schedule report dashboard policy request ticket engineer"
).split()


def make_corpus(root: Path, n_files: int, seed: int = 7, paragraphs: int = 6) -> list[Path]:
    """Writes n_files Markdown, HTML and text documents of a fictional company, each with a unique fact."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n_files):
        topic = _TOPICS[i % len(_TOPICS)]
        sections = []
        for s in range(3):
            paras = [
                " ".join(rng.choice(_WORDS) for _ in range(rng.randint(40, 90))) + "."
                for _ in range(max(1, paragraphs // 3))
            ]
            sections.append((f"{topic.title()} part {s + 1}", paras))
        fact = f"The {topic} reference code for document {i} is RC-{i:05d}."
        sections[0][1].insert(0, fact)
        kind = i % 3
        if kind == 0:
            path = root / topic / f"doc-{i:04d}.md"
            text = f"# {topic.title()} guide {i}\n\n" + "\n\n".join(
                f"## {title}\n\n" + "\n\n".join(paras) for title, paras in sections
            )
        elif kind == 1:
            path = root / topic / f"doc-{i:04d}.html"
            text = (
                f"<html><body><nav>menu</nav><h1>{topic.title()} guide {i}</h1>"
                + "".join(
                    f"<h2>{title}</h2>" + "".join(f"<p>{p}</p>" for p in paras) for title, paras in sections
                )
                + "</body></html>"
            )
        else:
            path = root / topic / f"doc-{i:04d}.txt"
            text = "\n\n".join(p for _, paras in sections for p in paras)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths
