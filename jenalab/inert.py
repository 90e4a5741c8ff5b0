"""Student output made inert before anything stores or shows it.

A notebook can display HTML, JavaScript, SVG or markdown with script in it, or write raw HTML into its
markdown cells, and the pages people open render them: the feedback page in a student's browser, the graded notebook in the
formgrader inside the instructor's Jupyter session (where a script would act with the instructor's
rights). So every output of a graded notebook is rebuilt from a short allowlist before nbgrader
stores it: text, PNG/JPEG/GIF images, errors, and HTML reduced to harmless tags (tables stay
tables); everything else keeps only its plain-text form. Raw HTML in the student's markdown cells is
reduced the same way. Pages the grader writes itself also forbid
scripts outright (``CSP``).
"""

from __future__ import annotations

import base64
import hashlib

import bleach
from nbformat import NotebookNode
from nbformat.v4 import new_output

TEXT = "text/plain"
IMAGES = ("image/png", "image/jpeg", "image/gif")
HTML = "text/html"
# Structure and emphasis only: no script, style, link, form, iframe, object, image or event handler.
TAGS = ("table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption", "colgroup", "col", "div", "span", "p", "pre",
        "code", "b", "i", "em", "strong", "u", "s", "small", "sub", "sup", "br", "hr", "ul", "ol", "li", "dl", "dt",
        "dd", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote")
ATTRIBUTES = ("class", "colspan", "rowspan", "align", "border", "title")
# For pages the grader writes: no script of any origin runs, images only from the page itself.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:"


def clean_html(markup: str) -> str:
    """HTML with every tag and attribute outside the allowlist removed (their text kept, escaped)."""
    return bleach.clean(markup, tags=TAGS, attributes=list(ATTRIBUTES), strip=True, strip_comments=True)


def clean_markdown(source: str) -> str:
    """A student's markdown with raw HTML reduced to the allowlist (markdown syntax itself is kept)."""
    return clean_html(source) if "<" in source else source


def _text(value) -> str:
    """Text as nbformat stores it: a string or a list of strings."""
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return "".join(value)
    return value if isinstance(value, str) else ""


def inert_output(output: dict) -> NotebookNode | None:
    """The output rebuilt from the allowlist (None: nothing of it may be kept)."""
    kind = output.get("output_type")
    if kind == "stream":
        name = output.get("name") if output.get("name") in ("stdout", "stderr") else "stdout"
        return new_output("stream", name=name, text=_text(output.get("text")))
    if kind == "error":
        traceback = output.get("traceback")
        return new_output("error", ename=_text(output.get("ename")), evalue=_text(output.get("evalue")),
                          traceback=[t for t in traceback if isinstance(t, str)] if isinstance(traceback, list) else [])
    if kind not in ("display_data", "execute_result"):
        return None
    data = output.get("data") if isinstance(output.get("data"), dict) else {}
    kept = {mime: _text(data[mime]) for mime in (TEXT, *IMAGES) if mime in data and _text(data[mime])}
    if HTML in data and _text(data[HTML]):
        kept[HTML] = clean_html(_text(data[HTML]))
    if not kept:
        return None
    if kind == "execute_result":
        count = output.get("execution_count")
        return new_output(kind, data=kept, execution_count=count if isinstance(count, int) else None)
    return new_output(kind, data=kept)


def inert_outputs(outputs: list) -> list[NotebookNode]:
    return [clean for clean in map(inert_output, outputs) if clean is not None]


def with_csp(page: str, scripts: list[str] = ()) -> str:
    """An HTML page in which no script may run but the given inline ones, by their hash (the policy goes right
    after <head>)."""
    policy = CSP
    if scripts:
        hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in scripts)
        policy = CSP.replace("default-src 'none';", f"default-src 'none'; script-src {hashes};")
    meta = f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
    head = page.find("<head>")
    if head < 0:
        return meta + page
    return page[: head + len("<head>")] + meta + page[head + len("<head>"):]
