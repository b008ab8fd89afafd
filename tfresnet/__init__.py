"""tfresnet: a Keras 3 / TensorFlow training toolkit.

Model builders (ResNet, VGG, MobileNet) from one registry, data pipelines, recipes, tuning and
SavedModel export. Start with `tfresnet.list_models()` and `tfresnet.create_model(name)`.

Importing this package loads neither TensorFlow nor Keras (so `tfresnet --help` answers at once);
the names below import the model registry on first use. It quiets TensorFlow's start-up lines and
registers tfresnet's Keras classes as soon as either is imported (`tfresnet._startup`), so
``import tfresnet, keras; keras.saving.load_model("RUN_DIR/model.keras")`` works.
"""

import configparser
import importlib
import importlib.metadata
import importlib.util
from pathlib import Path

from tfresnet import _startup

__all__ = ["create_model", "list_models", "get_model_spec", "predict", "evaluate", "lr_find", "__version__"]


def _package_version() -> str:
    """The installed distribution's version (setup.cfg's when it was installed); in a source
    checkout on ``sys.path`` that was never installed, setup.cfg's own; else ``0+unknown``."""
    try:
        return importlib.metadata.version("tfresnet")
    except importlib.metadata.PackageNotFoundError:
        setup_cfg = configparser.ConfigParser()
        setup_cfg.read(Path(__file__).resolve().parent.parent / "setup.cfg", encoding="utf-8")
        return setup_cfg.get("metadata", "version", fallback="0+unknown")


__version__ = _package_version()

# Public name -> module that defines it, imported on first access (PEP 562).
_LAZY = {
    "create_model": "tfresnet.models.registry",
    "get_model_spec": "tfresnet.models.registry",
    "list_models": "tfresnet.models.registry",
    "predict": "tfresnet.using.predict",
    "evaluate": "tfresnet.using.evaluate",
    "lr_find": "tfresnet.training.lr_find",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    # `import tfresnet; tfresnet.models.X` kept working when the registry was imported eagerly.
    if not name.startswith("_") and importlib.util.find_spec(f"tfresnet.{name}") is not None:
        return importlib.import_module(f"tfresnet.{name}")
    raise AttributeError(f"module 'tfresnet' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


_startup.install()
