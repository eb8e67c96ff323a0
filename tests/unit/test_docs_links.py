"""The card (README.md) and the guide (docs/*.md) point only at what exists: every relative link
and its anchor, every repository path named in backticks, every `luma_noise.…` name."""

import importlib
import re
from pathlib import Path

from tests.support.helpers import ROOT

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")  # [text](target), ![alt](target)
CODE = re.compile(r"```.*?```|`[^`\n]+`", re.S)  # fenced blocks and inline code spans
# A path inside this repository: from one of its top-level folders, or one of its top-level files.
REPO_PATH = re.compile(r"(?<![\w./<>~$-])((?:luma_noise|tests|benchmarks|docs|\.ci)/[\w./*-]*[\w*]"
                       r"|luma\.py|pyproject\.toml|requirements\.txt|dataset_infos\.json)(?![\w/])")
PACKAGE_NAME = re.compile(r"(?<![\w./])luma_noise(?:\.\w+)+")


def pages(root: Path) -> list:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def anchors(page: Path) -> set:
    """GitHub's heading anchors: lowercase, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # a "# comment" in a code block is no heading
    headings = re.findall(r"^#+ (.+)$", text, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def resolves(name: str) -> bool:
    """`luma_noise.a.b.c`: the longest importable module prefix, then attributes."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def problems(root: Path) -> list:
    """One message per dead link, missing anchor, missing path or unknown package name."""
    found = []
    for page in pages(root):
        text = page.read_text()
        where = page.relative_to(root)
        for target in LINK.findall(CODE.sub("", text)):
            if re.match(r"[a-z]+:", target):  # http(s), mailto: not checked offline
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                found.append(f"{where}: link to {target}: no such file")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file):
                found.append(f"{where}: link to {target}: no heading #{anchor} in {file.relative_to(root)}")
        for span in CODE.findall(text):
            for path in REPO_PATH.findall(span):
                if not list(root.glob(path.rstrip("/"))):
                    found.append(f"{where}: `{path}` does not exist")
            for name in PACKAGE_NAME.findall(span):
                if not resolves(name):
                    found.append(f"{where}: `{name}` is not a module or attribute of luma_noise")
    return found


def test_every_link_path_and_name_in_the_card_and_guide_exists():
    assert len(pages(ROOT)) >= 7  # the card and the guide's pages
    assert problems(ROOT) == []


def test_the_checker_finds_dead_links_anchors_paths_and_names(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text("# Guide\n\n## Rate limits\n")
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "bench_x.py").write_text("")
    (tmp_path / "README.md").write_text(
        "[ok](docs/guide.md#rate-limits) [web](https://example.org/x) [gone](docs/missing.md)\n"
        "[bad anchor](docs/guide.md#tokens) `python benchmarks/bench_x.py` `benchmarks/bench_y.py`\n"
        "`luma_noise.card.generated_tables` `luma_noise.card.no_such_table`\n"
        "```\npython tests/make_nothing.py M\n```\n")
    assert problems(tmp_path) == [
        "README.md: link to docs/missing.md: no such file",
        "README.md: link to docs/guide.md#tokens: no heading #tokens in docs/guide.md",
        "README.md: `benchmarks/bench_y.py` does not exist",
        "README.md: `luma_noise.card.no_such_table` is not a module or attribute of luma_noise",
        "README.md: `tests/make_nothing.py` does not exist",
    ]
