"""The README and the documentation site: short, every link resolves, undocumented names are caught.

`make test` also builds the site with ``mkdocs build --strict`` (links between pages, the nav,
docstrings); these check what that build cannot see: README.md, which is not a page of the site,
and that the hook behind "an undocumented public name fails" does flag one.
"""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_readme_is_short_and_links_every_page():
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    linked = {target for target in LINK.findall(text) if not target.startswith("http")}
    missing = [target for target in linked if not (ROOT / target).exists()]
    assert not missing, f"README links to missing files: {missing}"
    nav = set(re.findall(r":\s+(\S+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.MULTILINE))
    # Each guide page, the API reference's overview and the changelog (the file the page includes).
    pages = {f"docs/{page}" for page in nav if "/" not in page} - {"docs/index.md", "docs/changelog.md"}
    assert len(pages) == 12
    assert pages | {"docs/api/index.md", "CHANGELOG.md"} <= linked


def test_hook_flags_an_undocumented_public_name(tmp_path):
    griffe = pytest.importorskip("griffe")
    package = tmp_path / "toy"
    package.mkdir()
    (package / "__init__.py").write_text(
        '"""A toy."""\n\n'
        'def documented():\n    """Has one."""\n\n'
        'def bare():\n    return 1\n\n'
        'def _private():\n    return 2\n\n'
        'class Layer:\n    """A layer."""\n\n'
        '    def call(self, x):\n        return x\n\n'
        '    def extra(self):\n        return 3\n')
    spec = importlib.util.spec_from_file_location("api_coverage", ROOT / "docs/hooks/api_coverage.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    toy = griffe.load("toy", search_paths=[str(tmp_path)])
    assert hook.undocumented(toy) == ["toy.bare", "toy.Layer.extra"]
