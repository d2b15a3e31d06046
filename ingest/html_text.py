"""HTML to Markdown-shaped text: headings, paragraphs, lists and table rows; no navigation or scripts."""

from collections.abc import Iterator

from bs4 import BeautifulSoup
from bs4.element import Comment, NavigableString, PageElement, Tag

from ragserve.errors import SkipDocument

__all__ = ["MAX_DEPTH", "html_to_markdown"]

# Browsers stop nesting elements at about this depth too (Blink's parser caps its tree at 512); deeper pages
# are generated junk or an attack, and walking them costs time for no text a reader would see.
MAX_DEPTH = 512

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
    depth = _depth(soup)
    if depth > MAX_DEPTH:
        raise SkipDocument(f"HTML nested {depth} elements deep (the limit is {MAX_DEPTH})")
    for tag in soup.find_all(_DROP):
        tag.decompose()
    for tag in soup.select('[role="navigation"]'):
        tag.decompose()
    for br in soup.find_all("br"):
        br.replace_with("\n")
    return "\n\n".join(_blocks(soup.body or soup))


def _depth(root: Tag) -> int:
    deepest = 0
    stack = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tag))
    return deepest


def _blocks(root: Tag) -> list[str]:
    """The blocks in document order, walked with an explicit stack: no nesting can exhaust Python's."""
    blocks: list[str] = []
    # Each open container: its children still to visit, and the inline text gathered since its last block.
    stack: list[tuple[Iterator[PageElement], list[str]]] = [(iter(root.children), [])]
    while stack:
        children, inline = stack[-1]
        child = next(children, None)
        if child is None:
            _flush(inline, blocks)
            stack.pop()
        elif isinstance(child, Comment) or not isinstance(child, NavigableString | Tag):
            continue
        elif isinstance(child, NavigableString):
            inline.append(str(child))
        elif child.name in _INLINE:
            inline.append(child.get_text())
        else:
            _flush(inline, blocks)
            containers = _block(child, blocks)
            stack.extend((iter(tag.children), []) for tag in reversed(containers))
    return blocks


def _flush(inline: list[str], blocks: list[str]) -> None:
    text = " ".join("".join(inline).split())
    if text:
        blocks.append(text)
    inline.clear()


def _block(tag: Tag, blocks: list[str]) -> list[Tag]:
    """Adds the block this tag makes, if any; returns the containers to walk next, in order."""
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
        return nested
    elif name == "tr":
        cells = [_text(cell) for cell in tag.find_all(["td", "th"])]
        if any(cells):
            blocks.append(" | ".join(cells))
    elif name in _BLOCKS:
        text = _text(tag)
        if text:
            blocks.append(text)
    else:
        return [tag]
    return []


def _text(tag: Tag) -> str:
    # Inline markup is joined as written ("<b>30</b> days"), so no separator is added between pieces.
    text = " ".join(tag.get_text().split())
    # A paragraph that starts with '#' must not turn into a heading.
    return "\\" + text if text.startswith("#") else text
