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
