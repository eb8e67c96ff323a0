"""Names from shared results folders, made safe for report.md: nothing in a method or variant
name may become markup, a table cell boundary or a formula when the report is rendered."""

import html
import re


def md_text(text: str) -> str:
    """Plain text for Markdown: HTML entities for <, > and &, backslashes before Markdown's punctuation
    (and `$`, which starts math on GitHub)."""
    text = re.sub(r"[\x00-\x1f\x7f]", " ", str(text))
    return html.escape(re.sub(r"([\\`*_{}\[\]()#+!|~$])", r"\\\1", text), quote=False)


def md_code(text: str) -> str:
    """`text` as a Markdown code span, fenced by more backticks than any run inside it (CommonMark)."""
    text = re.sub(r"[\x00-\x1f\x7f]", " ", str(text))
    fence = "`" * (max(map(len, re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or fence != "`" else ""
    return f"{fence}{pad}{text}{pad}{fence}"
