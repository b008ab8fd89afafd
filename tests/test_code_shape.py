"""The package's shape stays as issue 13 left it: short functions, internals in the adapters."""

import ast
import io
import pathlib
import re
import tokenize

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "tfresnet"
MAX_CODE_LINES = 60
# library -> the one module allowed to import its private modules
ADAPTERS = {"keras.src": "keras_compat.py", "keras_tuner.src": "tuning/kt_compat.py",
            "tensorflow.python": "tf_compat.py"}


def _code_lines(source: str) -> set[int]:
    """Lines holding code: not blank, not only a comment, not only a string (docstrings)."""
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.STRING, tokenize.ENDMARKER}
    lines = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in skip:
            lines.update(range(token.start[0], token.end[0] + 1))
    return lines


def test_no_function_has_more_than_60_lines_of_code():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text()
        code = _code_lines(source)
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                count = sum(1 for line in range(node.lineno, node.end_lineno + 1) if line in code)
                if count > MAX_CODE_LINES:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({count})")
    assert not long, f"functions over {MAX_CODE_LINES} lines of code: {long}"


def test_private_modules_are_imported_only_by_their_adapter():
    for library, adapter in ADAPTERS.items():
        pattern = re.compile(rf"^\s*(from|import)\s+{re.escape(library)}\b", re.MULTILINE)
        users = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if pattern.search(p.read_text()))
        assert users in ([], [adapter]), f"{library} imported outside {adapter}: {users}"


MAX_MODULE_LINES = 500


def test_no_module_has_more_than_500_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in sorted(PACKAGE.rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node, name: str, is_package: bool, modules: set[str]) -> list[str]:
    """The tfresnet modules an import statement loads (a submodule rather than its package)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in modules]
    base = node.module or ""
    if node.level:
        parts = name.split(".")[: len(name.split(".")) - (node.level - (1 if is_package else 0))]
        base = ".".join(parts + ([node.module] if node.module else []))
    subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
    return subs or ([base] if base in modules else [])


def test_no_import_circle():
    """Imports inside functions count too: a circle through one still ties the two modules."""
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: set() for name in paths}
    for name, path in paths.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _imported(node, name, path.name == "__init__.py", set(paths)):
                    # A package's own __init__ is loaded by its submodules anyway: not an edge.
                    if target != name and not name.startswith(f"{target}."):
                        graph[name].add(target)
    circles, done = [], set()

    def visit(node, trail):
        if node in trail:
            circles.append([*trail[trail.index(node):], node])
            return
        if node in done:
            return
        for target in sorted(graph[node]):
            visit(target, [*trail, node])
        done.add(node)

    for name in sorted(graph):
        visit(name, [])
    assert not circles, f"import circles: {[' -> '.join(c) for c in circles[:5]]}"
