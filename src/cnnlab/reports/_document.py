"""A report as plain data (sections of text, tables and figures), written as Markdown and HTML.

Markdown links its figures as SVG files beside it; the HTML carries them inline, so the one
file can be mailed or opened anywhere.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]


@dataclass
class Figure:
    file: str  # file name of the SVG beside report.md
    svg: str
    caption: str


@dataclass
class Section:
    title: str
    blocks: list[str | Table | Figure] = field(default_factory=list)  # in reading order

    def add(self, *blocks: str | Table | Figure) -> Section:
        self.blocks.extend(blocks)
        return self


@dataclass
class Document:
    title: str
    sections: list[Section] = field(default_factory=list)


@dataclass
class Written:
    """The files a report was written to; iterating gives every one (figures first)."""

    markdown: Path
    html: Path
    figures: list[Path]

    def __iter__(self):
        return iter([*self.figures, self.markdown, self.html])


def write(doc: Document, out: Path) -> Written:
    """Writes report.md, report.html and every figure's SVG into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    figures = [
        _write_text(out / block.file, block.svg)
        for section in doc.sections
        for block in section.blocks
        if isinstance(block, Figure)
    ]
    markdown = _write_text(out / "report.md", to_markdown(doc))
    return Written(markdown, _write_text(out / "report.html", to_html(doc)), figures)


def _write_text(path: Path, text: str) -> Path:
    # Write then rename, so a reader never sees half a report.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def to_markdown(doc: Document) -> str:
    lines = [f"# {doc.title}", ""]
    for section in doc.sections:
        lines += [f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Table):
                lines += _md_table(block)
            elif isinstance(block, Figure):
                lines += [f"![{block.caption}]({block.file})", f"*{block.caption}*"]
            else:
                lines.append(block)
            lines.append("")
    return "\n".join(lines)


def _md_table(table: Table) -> list[str]:
    def row(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return [row(table.headers), row(["---"] * len(table.headers)), *map(row, table.rows)]


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; }
th { background: #f3f3f3; }
figure { margin: 1rem 0; } figure svg { max-width: 100%; height: auto; }
figcaption { font-style: italic; font-size: 0.9rem; }
code { background: #f3f3f3; padding: 0 0.2rem; }
"""


def to_html(doc: Document) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(doc.title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(doc.title)}</h1>",
    ]
    for section in doc.sections:
        parts.append(f"<section><h2>{html.escape(section.title)}</h2>")
        for block in section.blocks:
            parts.append(_html_block(block))
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _html_block(block: str | Table | Figure) -> str:
    if isinstance(block, Table):
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in block.headers)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
            for row in block.rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if isinstance(block, Figure):
        svg = re.sub(r"^\s*<\?xml[^>]*>\s*(<!DOCTYPE[^>]*>)?", "", block.svg)
        caption = html.escape(block.caption)
        return f'<figure data-file="{block.file}">{svg}<figcaption>{caption}</figcaption></figure>'
    return f"<p>{_inline(block)}</p>"


def _inline(text: str) -> str:
    """The little Markdown the report's paragraphs use: `code` and **bold**."""
    text = html.escape(text)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)
