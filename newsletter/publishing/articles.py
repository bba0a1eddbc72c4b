"""Articles as the therapist writes them, plain text or Markdown, turned into a title, an HTML
fragment, wrapped plain text and the signature block she signs with.

Nothing typed in an article ever runs: plain text is escaped, and Markdown is parsed with raw
HTML disabled (markdown-it-py refuses javascript: links on its own). Addresses, web links and
phone numbers become links. Every "%%" is broken with an invisible word joiner, so article text
can never produce the per-reader markers of newsletter/personalize.py.
"""
from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup, escape

TEXT = "text"
MARKDOWN = "markdown"
FORMATS = (TEXT, MARKDOWN)
WRAP = 76
WORD_JOINER = "\u2060"

_LINKABLE = re.compile(
    r"(?P<url>(?:https?://|www\.)[^\s<>\"]+)"
    r"|(?P<email>(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+)"
    r"|(?P<phone>(?<![\w/+])(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}(?![\w-]))",
    re.IGNORECASE,
)
_TRAILING_PUNCTUATION = ".,;:!?'\"’”)]"
_CONTACT_EMOJI = "📍🌐📧📞☎📱✉🏠💻"
_MARKDOWN_HINTS = re.compile(
    r"^(#{1,6}\s|[-*+]\s|\d+\.\s|>\s?)|\[[^\]]+\]\([^)]+\)|\*\*[^*]+\*\*|^\s*```", re.MULTILINE
)
_BLOCK_MARKUP = re.compile(r"^\s*(#|>|!\[|[-*+]\s|\d+[.)]\s)")
_SENTENCE = re.compile(r"^(.+?[.!?…])(?=\s|$)", re.DOTALL)
_MARKDOWN_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_MARKDOWN_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
# Words that close a letter, before a comma: "Warmly," "With care,".
_CLOSING = (r"(?i:warmly|with (?:care|warmth|love|gratitude)|best(?: wishes)?|kindly|kind regards|regards|"
            r"sincerely|take care|gently|until next time|yours(?: truly)?)")
# A one-line sign-off: "— Shoshana", "Warmly, Shoshana Ort", "Shoshana Ort, LCSW".
_SIGN_OFF = re.compile(
    rf"^\s*(?:[—–~-]+\s*\S|{_CLOSING},\s*\S|[A-Z][\w'’.-]+(?: [A-Z][\w'’.-]+){{0,3}},\s*[A-Z]{{2,}})")
_CLOSING_LINE = re.compile(rf"^\s*{_CLOSING},\s*$")


@dataclass(frozen=True)
class Body:
    """An article's body: everything but the title."""

    html: Markup
    text: str
    opening: str  # its first sentence, the default preheader
    signature: str  # the signature block as she wrote it ('' if none was found)
    postscript_html: Markup  # lines she wrote after her signature
    postscript_text: str


@dataclass(frozen=True)
class Article:
    """A whole article: its title, its format and its body."""

    title: str
    format: str
    body_source: str  # the source without its title line
    body: Body


def neutralize(text: str) -> str:
    """Break every "%%" with an invisible word joiner, so no marker can come from this text."""
    return text.replace("%%", f"%{WORD_JOINER}%")


def detect_format(source: str, filename: str = "") -> str:
    """Markdown for .md files or text that uses Markdown syntax on a few lines, whatever the
    file is called (a .txt file written in Markdown is Markdown); else plain text."""
    if filename.lower().endswith((".md", ".markdown")):
        return MARKDOWN
    return MARKDOWN if len(_MARKDOWN_HINTS.findall(source)) >= 2 else TEXT


def _clean(source: str) -> str:
    return source.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")


def split_title(source: str, fmt: str) -> tuple[str, str]:
    """The first non-empty line as the title (without Markdown's #), and the rest."""
    lines = _clean(source).split("\n")
    for index, line in enumerate(lines):
        if line.strip():
            heading = _MARKDOWN_HEADING.match(line) if fmt == MARKDOWN else None
            title = heading.group(1) if heading else line.strip()
            return " ".join(title.split()), "\n".join(lines[index + 1:]).strip("\n")
    return "", ""


def parse(source: str, fmt: str | None = None, *, title: str | None = None, filename: str = "",
          base_url: str = "") -> Article:
    """A whole article: the first line is its title (unless `title` is given for a Markdown
    article that starts without a heading)."""
    fmt = fmt if fmt in FORMATS else detect_format(source, filename)
    first_title, rest = split_title(source, fmt)
    body_source = rest
    if title and fmt == MARKDOWN and not _MARKDOWN_HEADING.match(_first_line(source)):
        body_source = _clean(source).strip("\n")
    return Article(title=" ".join((title or first_title).split()), format=fmt, body_source=body_source,
                   body=parse_body(body_source, fmt, base_url=base_url))


def _first_line(source: str) -> str:
    return next((line for line in _clean(source).split("\n") if line.strip()), "")


def parse_body(source: str, fmt: str, *, base_url: str = "") -> Body:
    """Render a body (no title line) as HTML and wrapped text, its signature set apart."""
    lines = neutralize(_clean(source)).split("\n")
    start, end = _signature_span(lines)
    article_lines, signature_lines, after = lines[:start], lines[start:end], lines[end:]
    render = _render_markdown if fmt == MARKDOWN else _render_text
    html, text = render("\n".join(article_lines), base_url)
    postscript_html, postscript_text = render("\n".join(after), base_url)
    return Body(
        html=html,
        text=text,
        opening=opening_sentence(text),
        signature="\n".join(line.strip() for line in signature_lines if line.strip()),
        postscript_html=postscript_html,
        postscript_text=postscript_text,
    )


def opening_sentence(text: str, limit: int = 160) -> str:
    """The first sentence of a text (shortened at a word if it is very long)."""
    paragraph = " ".join(text.strip().split("\n\n", 1)[0].split()) if text.strip() else ""
    match = _SENTENCE.match(paragraph)
    sentence = match.group(1) if match else paragraph
    if len(sentence) > limit:
        sentence = sentence[:limit].rsplit(" ", 1)[0].rstrip(",;:—–- ") + "…"
    return sentence


# -- the signature block

def _is_contact_line(line: str) -> bool:
    """A line of addresses, links and phone numbers, perhaps with a place name and emoji."""
    stripped = _MARKDOWN_LINK.sub(r"\1", line).strip().strip("*_")  # a Markdown link reads as its words
    if not stripped or len(stripped) > 300 or _BLOCK_MARKUP.match(stripped) or stripped.endswith(("!", "?", "…")):
        return False
    if stripped.endswith(".") and not _LINKABLE.search(stripped.split()[-1]):
        return False  # a sentence that mentions a link
    has_item = bool(_LINKABLE.search(stripped)) or stripped[0] in _CONTACT_EMOJI
    leftover = _LINKABLE.sub("", stripped)
    leftover = "".join(ch for ch in leftover if ch.isalnum() or ch == " ")
    return has_item and len(" ".join(leftover.split())) <= 60


def _is_name_line(line: str) -> bool:
    """A short line that reads like a name, credentials or a sign-off, not a sentence."""
    stripped = line.strip().strip("*_").strip()
    if not stripped or len(stripped) > 120 or _BLOCK_MARKUP.match(stripped):
        return False
    if stripped.endswith(","):
        return len(stripped) <= 40  # "Warmly,"
    return not stripped.endswith((".", "!", "?", ":", "…", "”", '"'))


def _signature_span(lines: list[str]) -> tuple[int, int]:
    """Where the signature block is among the last lines: (start, end), or an empty span."""
    filled = [i for i, line in enumerate(lines) if line.strip()]
    tail = filled[-8:]
    contact = [i for i in tail if _is_contact_line(lines[i])]
    if not contact:
        return _sign_off_span(lines, filled)
    last_contact = contact[-1]
    position = filled.index(last_contact)
    start = position
    while start > 0 and _is_contact_line(lines[filled[start - 1]]):
        start -= 1
    names = 0
    while start > 0 and names < 5 and _is_name_line(lines[filled[start - 1]]):
        start -= 1
        names += 1
    if start == 0 or (names == 0 and start == position and len(filled) - position > 4):
        return len(lines), len(lines)  # the whole text, or a lone link in the closing lines
    return filled[start], last_contact + 1


def _sign_off_span(lines: list[str], filled: list[int]) -> tuple[int, int]:
    """A signature of one line at the very end ("— Shoshana", "Warmly, Shoshana"), or a name
    under a closing word ("Warmly," then "Shoshana")."""
    if len(filled) < 2:
        return len(lines), len(lines)
    last = lines[filled[-1]].strip().strip("*_").strip()
    above = lines[filled[-2]].strip().strip("*_").strip()
    if not (_is_name_line(last) and len(last) <= 80):
        return len(lines), len(lines)
    if _CLOSING_LINE.match(above) and len(filled) > 2:
        return filled[-2], filled[-1] + 1
    if _SIGN_OFF.match(last):
        return filled[-1], filled[-1] + 1
    return len(lines), len(lines)


# -- plain text

def _paragraphs(source: str) -> list[str]:
    """Blank lines separate paragraphs; text with no blank lines has one paragraph per line."""
    if not source.strip():
        return []
    blocks = re.split(r"\n\s*\n", source.strip())
    if len(blocks) == 1:
        return [" ".join(line.split()) for line in source.split("\n") if line.strip()]
    return [" ".join(block.split()) for block in blocks]


def _render_text(source: str, _base_url: str) -> tuple[Markup, str]:
    paragraphs = _paragraphs(source)
    html = Markup("\n").join(Markup("<p>{}</p>").format(linkify(p)) for p in paragraphs)
    return html, "\n\n".join(wrap(p) for p in paragraphs)


def wrap(paragraph: str, width: int = WRAP, prefix: str = "") -> str:
    """Wrap near `width` columns without breaking words, links or hyphenated words."""
    return textwrap.fill(paragraph, width=width, initial_indent=prefix, subsequent_indent=prefix,
                         break_long_words=False, break_on_hyphens=False)


def _href(kind: str, value: str) -> str:
    if kind == "url":
        return value if value.lower().startswith("http") else f"https://{value}"
    if kind == "email":
        return f"mailto:{value}"
    digits = re.sub(r"\D", "", value)
    return f"tel:+1{digits}" if len(digits) == 10 else f"tel:+{digits}"


def _split_links(text: str) -> list[tuple[str, str | None]]:
    """The text in pieces: (piece, href) where href is None for plain words."""
    pieces: list[tuple[str, str | None]] = []
    position = 0
    for match in _LINKABLE.finditer(text):
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "url":
            value = _trim_url(value)
        start, end = match.start(), match.start() + len(value)
        if start > position:
            pieces.append((text[position:start], None))
        pieces.append((value, _href(kind, value)))
        position = end
    if position < len(text):
        pieces.append((text[position:], None))
    return pieces


def _trim_url(url: str) -> str:
    while url and url[-1] in _TRAILING_PUNCTUATION:
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break
        url = url[:-1]
    return url


def linkify(text: str) -> Markup:
    """Escape text and turn its web links, e-mail addresses and phone numbers into links."""
    return Markup("").join(
        Markup('<a href="{}">{}</a>').format(href, piece) if href else escape(piece)
        for piece, href in _split_links(text)
    )


# -- Markdown

_markdown = MarkdownIt("commonmark", {"html": False, "typographer": False}).enable("strikethrough")


def _render_markdown(source: str, base_url: str) -> tuple[Markup, str]:
    tokens = _markdown.parse(source)
    for token in tokens:
        if token.type in ("heading_open", "heading_close") and token.tag == "h1":
            token.tag = "h2"  # the title is the only h1
        if token.type == "inline" and token.children:
            token.children = _linked_children(token.children, base_url)
    html = _markdown.renderer.render(tokens, _markdown.options, {})
    return Markup(html.strip()), _markdown_text(tokens)


def _linked_children(children: list[Token], base_url: str) -> list[Token]:
    """Make bare links into links, and site-relative links absolute (mail has no base URL)."""
    result: list[Token] = []
    inside_link = False
    for child in children:
        if child.type in ("link_open", "image"):
            attr = "href" if child.type == "link_open" else "src"
            value = str(child.attrs.get(attr, ""))
            if value.startswith("/") and not value.startswith("//"):
                child.attrs[attr] = base_url + value
        inside_link = (inside_link or child.type == "link_open") and child.type != "link_close"
        if child.type != "text" or inside_link:
            result.append(child)
            continue
        for piece, href in _split_links(child.content):
            if href is None:
                result.append(_token("text", content=piece))
            else:
                result += [_token("link_open", tag="a", nesting=1, attrs={"href": href}),
                           _token("text", content=piece), _token("link_close", tag="a", nesting=-1)]
    return result


def _token(kind: str, *, tag: str = "", nesting: int = 0, content: str = "", attrs: dict | None = None) -> Token:
    token = Token(kind, tag, nesting, attrs=attrs or {})
    token.content = content
    return token


def _inline_text(children: list[Token]) -> str:
    """An inline run as plain text: links as "text (url)", images as "[alt] (url)"."""
    out: list[str] = []
    link_start, href = 0, ""
    for child in children:
        if child.type == "text":
            out.append(child.content)
        elif child.type == "code_inline":
            out.append(f"`{child.content}`")
        elif child.type == "softbreak":
            out.append(" ")
        elif child.type == "hardbreak":
            out.append("\n")
        elif child.type == "link_open":
            link_start, href = len(out), str(child.attrs.get("href", ""))
        elif child.type == "link_close":
            label = "".join(out[link_start:])
            if href and not _alnum(href).endswith(_alnum(label)):
                out.append(f" ({_plain_href(href)})")
        elif child.type == "image":
            out.append(f"[{child.content or 'image'}] ({child.attrs.get('src', '')})")
    return "".join(out)


def _alnum(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _plain_href(href: str) -> str:
    return href.removeprefix("mailto:").removeprefix("tel:")


def _markdown_text(tokens: list[Token]) -> str:
    """Markdown as readable plain text: headings underlined, lists dashed, quotes with "> "."""
    blocks: list[tuple[str, bool]] = []  # (text, is a list item)
    quote_depth = 0
    lists: list[list] = []  # for each open list: [ordered, next number, an item just began]
    heading = ""
    for token in tokens:
        if token.type == "blockquote_open":
            quote_depth += 1
        elif token.type == "blockquote_close":
            quote_depth -= 1
        elif token.type in ("bullet_list_open", "ordered_list_open"):
            lists.append([token.type == "ordered_list_open", int(token.attrs.get("start", 1) or 1), False])
        elif token.type == "list_item_open":
            lists[-1][2] = True
        elif token.type in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif token.type == "heading_open":
            heading = token.tag
        elif token.type == "hr":
            blocks.append(("* * *", False))
        elif token.type in ("fence", "code_block"):
            blocks.append((textwrap.indent(token.content.rstrip("\n"), "    "), False))
        elif token.type == "inline":
            blocks.append((_text_block(_inline_text(token.children or []), heading, quote_depth, lists),
                           bool(lists) and not heading))
            heading = ""
    text = ""
    for index, (block, in_list) in enumerate(blocks):
        if block.strip():
            tight = in_list and index > 0 and blocks[index - 1][1]
            text += ("\n" if tight else "\n\n") + block if text else block
    return text


def _text_block(text: str, heading: str, quote_depth: int, lists: list[list]) -> str:
    prefix = "> " * quote_depth
    if heading:
        line = " ".join(text.split())
        return f"{prefix}{line}\n{prefix}{('=' if heading == 'h2' else '-') * min(len(line), WRAP)}"
    if lists:
        ordered, number, item_began = lists[-1]
        marker = f"{number}. " if ordered else "- "
        if item_began:
            lists[-1][1:] = [number + 1, False]
        else:  # a second paragraph of the same item
            marker = " " * len(marker)
        indent = "  " * (len(lists) - 1)
        return textwrap.fill(" ".join(text.split()), width=WRAP, initial_indent=prefix + indent + marker,
                             subsequent_indent=prefix + indent + " " * len(marker),
                             break_long_words=False, break_on_hyphens=False)
    return "\n".join(wrap(" ".join(line.split()), prefix=prefix) for line in text.split("\n"))
