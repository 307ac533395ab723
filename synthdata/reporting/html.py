"""A self-contained HTML report: headings, text, tables and images embedded as data URIs.

One file to open, attach or log to MLflow; no server, no external asset.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from synthdata.atomic import write_text

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.fail { background: #fbe3e3; } .pass { background: #e6f4e6; } .synth { background: #fdf0e6; }
figure { margin: 1em 0; } figcaption { font-size: 0.85em; color: #555; }
img { max-width: 100%; image-rendering: pixelated; }
"""


class HtmlReport:
    def __init__(self, title: str):
        self.title = title
        self.parts: list[str] = [f"<h1>{html.escape(title)}</h1>"]

    def heading(self, text: str) -> None:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def text(self, text: str) -> None:
        self.parts.append(f"<p>{html.escape(text)}</p>")

    def table(self, headers: list[str], rows: list[list[object]], *, row_classes: list[str] | None = None) -> None:
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
        body = []
        for index, row in enumerate(rows):
            css = f' class="{row_classes[index]}"' if row_classes and row_classes[index] else ""
            body.append(f"<tr{css}>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in row) + "</tr>")
        self.parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")

    def bullets(self, lines: list[str]) -> None:
        self.parts.append("<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>")

    def raw(self, markup: str) -> None:
        """Markup the caller built (and escaped) itself, e.g. a list of links."""
        self.parts.append(markup)

    def image(self, path: Path, caption: str) -> None:
        data = base64.b64encode(Path(path).read_bytes()).decode()
        self.parts.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )

    def write(self, path: Path) -> Path:
        page = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(self.parts)}</body></html>\n"
        )
        return write_text(Path(path), page)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if value != value:
            return "–"
        return f"{value:.4g}"
    return str(value)
