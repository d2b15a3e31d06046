"""HTML to Markdown-shaped text: headings, paragraphs, lists and table rows; no navigation or scripts."""

from bs4 import BeautifulSoup
from bs4.element import Comment, NavigableString, Tag

__all__ = ["html_to_markdown"]

_DROP = (
    "script",
    "style",
    "nav",
    "noscript",
    "template",
    "svg",
    "header",
    "footer",
    "aside",
    "form",
    "iframe",
)
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_BLOCKS = {"p", "pre", "blockquote", "dt", "dd", "caption", "figcaption", "address"}
_INLINE = {
    "a",
    "span",
    "b",
    "strong",
    "em",
    "i",
    "u",
    "code",
    "small",
    "sup",
    "sub",
    "abbr",
    "mark",
    "label",
    "time",
}


def html_to_markdown(html: str) -> str:
    """Keeps the text a reader sees, with headings as Markdown headings so chunking follows them."""
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup.find_all(_DROP):
        tag.decompose()
    for tag in soup.select('[role="navigation"]'):
        tag.decompose()
    for br in soup.find_all("br"):
        br.replace_with("\n")
    root = soup.body or soup
    blocks: list[str] = []
    _walk(root, blocks)
    return "\n\n".join(blocks)


def _walk(node: Tag, blocks: list[str]) -> None:
    inline: list[str] = []

    def flush() -> None:
        text = " ".join("".join(inline).split())
        if text:
            blocks.append(text)
        inline.clear()

    for child in node.children:
        if isinstance(child, Comment):
            continue
        if isinstance(child, NavigableString):
            inline.append(str(child))
            continue
        if not isinstance(child, Tag):
            continue
        name = child.name
        if name in _INLINE:
            inline.append(child.get_text())
        else:
            flush()
            _block(child, blocks)
    flush()


def _block(tag: Tag, blocks: list[str]) -> None:
    name = tag.name
    if name in _HEADINGS:
        text = _text(tag)
        if text:
            blocks.append("#" * _HEADINGS[name] + " " + text)
    elif name == "li":
        nested = [sub.extract() for sub in tag.find_all(["ul", "ol"])]
        text = _text(tag)
        if text:
            blocks.append("- " + text)
        for sublist in nested:
            _walk(sublist, blocks)
    elif name == "tr":
        cells = [_text(cell) for cell in tag.find_all(["td", "th"])]
        if any(cells):
            blocks.append(" | ".join(cells))
    elif name in _BLOCKS:
        text = _text(tag)
        if text:
            blocks.append(text)
    else:
        _walk(tag, blocks)


def _text(tag: Tag) -> str:
    # Inline markup is joined as written ("<b>30</b> days"), so no separator is added between pieces.
    text = " ".join(tag.get_text().split())
    # A paragraph that starts with '#' must not turn into a heading.
    return "\\" + text if text.startswith("#") else text
