"""MkDocs hook: every public name the API reference renders must have a docstring.

mkdocstrings leaves a public function, class or method without a docstring out of the page
silently; this hook turns each such name into a warning, which `mkdocs build --strict` (and so
`make test`) fails on. It reads the same `::: identifier` lines mkdocstrings renders and looks
the objects up with griffe (static analysis: no TensorFlow import, well under a second).
"""

from __future__ import annotations

import logging
import re

import griffe

log = logging.getLogger("mkdocs.hooks.api_coverage")
IDENTIFIER = re.compile(r"^:::\s+([\w.]+)\s*$", re.MULTILINE)
# Methods of Keras' Layer, Loss, LearningRateSchedule and Callback protocols: a class that
# overrides them is documented by its own docstring and Keras' (what `call` or `on_epoch_end`
# means is Keras' contract, not tfresnet's), so they need none of their own.
KERAS_PROTOCOL = {"call", "build", "compute_output_shape", "get_config", "from_config"}
_loader: griffe.GriffeLoader | None = None


def _is_keras_protocol(member: griffe.Object, owner: griffe.Object) -> bool:
    return owner.is_class and member.is_function and (
        member.name in KERAS_PROTOCOL or member.name.startswith("on_"))


def undocumented(obj: griffe.Object) -> list[str]:
    """The paths of `obj`'s public functions, classes and methods that have no docstring.

    Imported names (aliases) are skipped: they are checked where they are defined. A module's
    ``__all__`` decides what is public, as it does for mkdocstrings; names starting with an
    underscore (dunders included: ``__init__`` is merged into its class's page) are not.
    """
    missing = []
    for member in obj.members.values():
        if member.is_alias or member.name.startswith("_") or not member.is_public:
            continue
        if not (member.is_function or member.is_class):
            continue
        if not member.docstring and not _is_keras_protocol(member, obj):
            missing.append(member.path)
        if member.is_class:
            missing.extend(undocumented(member))
    return missing


def on_page_markdown(markdown, page, config, files):
    """Warn about each undocumented public name under a page's ``::: identifier`` lines."""
    global _loader
    for identifier in IDENTIFIER.findall(markdown):
        if _loader is None:
            _loader = griffe.GriffeLoader(search_paths=["."], docstring_parser=griffe.Parser.google)
        package = identifier.split(".")[0]
        if package not in _loader.modules_collection:
            _loader.load(package)
        for path in undocumented(_loader.modules_collection[identifier]):
            log.warning("%s: public name %s has no docstring (%s)", page.file.src_uri, path, identifier)
    return markdown
