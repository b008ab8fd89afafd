"""Layer-wise learning rates for fine-tuning: ``layer_decay`` and ``lr_mult`` (`TrainConfig`).

fastai's discriminative rates and timm's ``--layer-decay`` (after BEiT, Bao et al. 2021, and
ELECTRA, Clark et al. 2020): the head learns at the phase's rate, and each block below it at
`layer_decay` times the rate of the block above, so a weight ``depth`` blocks down from the head
learns at ``lr x layer_decay^depth``; `lr_mult` then multiplies the rate of every layer whose
name starts with one of its prefixes (the longest matching prefix wins; 0 freezes).

A block is what the family's names say it is (`BLOCK_PATTERNS`): ``conv5_block3_*`` for the
ResNets (tfresnet's and keras.applications'), ``block_16_*`` for MobileNetV2, ``conv_dw_13`` and
``conv_pw_13`` for MobileNet v1, ``block5_*`` for VGG. A layer that no pattern matches is a block
of its own (the classifier, a stem convolution, the dense layers of an MLP). Only layers with
weights count, so the depth is the same in every phase, whatever is frozen.

The rates themselves are applied by the optimizer, per variable
(`tfresnet.training.optimizers.LAYER_RATE_OPTIMIZERS`).
"""

from __future__ import annotations

import dataclasses
import difflib
import re

from tfresnet.models.common import iter_layers
from tfresnet.training.config import ConfigError

__all__ = ["BLOCK_PATTERNS", "block_patterns", "block_of", "LayerRates", "layer_rates"]

# family (a prefix of the registry's family label) -> patterns whose groups, joined by "_", name
# a layer's block. Tried in order; the first that matches wins.
BLOCK_PATTERNS: dict[str, tuple[str, ...]] = {
    # conv2_block1_1_conv ... conv5_block3_3_bn, v2's conv2_block1_preact_bn; the stem
    # conv1_conv/conv1_bn; v2's post_bn (keras.applications' ResNet names, and tfresnet's).
    "resnet": (r"^(conv\d+_block\d+)_", r"^(conv1)_", r"^(post)_"),
    # conv_dw_13, conv_dw_13_bn, conv_pw_13, conv_pw_13_bn: one depthwise-separable block.
    "mobilenet_v1": (r"^(conv)_(?:dw|pw)_(\d+)(?:_|$)", r"^(conv1)(?:_|$)"),
    # block_16_expand ... block_16_project_BN; block 0 is expanded_conv_*; stem Conv1/bn_Conv1.
    "mobilenet_v2": (r"^(block_\d+)_", r"^(expanded_conv)_", r"^(?:bn_)?(Conv1)(?:_|$)", r"^(Conv_1)(?:_|$)"),
    "mobilenet_v3": (r"^(expanded_conv(?:_\d+)?)_", r"^(conv)(?:_bn)?$", r"^(conv_1)(?:_bn)?$"),
    # block5_conv1 ... block5_conv3 (and _bn in the batch-norm variants).
    "vgg": (r"^(block\d+)_",),
    "convnet": (r"^(block\d+)_",),
}


def block_patterns(family: str | None) -> tuple[re.Pattern, ...]:
    """The compiled patterns of a registry family (e.g. ``"resnet_v1"``), or every pattern for
    a model outside the table (names of one family do not match another's patterns)."""
    rows = [patterns for prefix, patterns in BLOCK_PATTERNS.items() if family and family.startswith(prefix)]
    if not rows:
        rows = list(BLOCK_PATTERNS.values())
    return tuple(re.compile(p) for patterns in rows for p in patterns)


def block_of(layer_name: str, patterns) -> str:
    """The block a layer belongs to: the first matching pattern's groups, else the layer itself."""
    for pattern in patterns:
        match = pattern.match(layer_name)
        if match:
            return "_".join(match.groups())
    return layer_name


def _weighted_layers(model) -> list:
    # Nested models are walked into; a layer holding sublayers counts as one (its weights).
    import keras

    return [layer for layer in iter_layers(model) if not isinstance(layer, keras.Model) and layer.weights]


@dataclasses.dataclass(frozen=True)
class LayerRates:
    """Each variable's rate multiplier, and the blocks they come from.

    Attributes:
        multipliers: variable path -> multiplier of the phase's rate (entries of 1 left out).
        blocks: ``(block, depth, [layer multipliers], trainable)`` from the head down.
    """

    multipliers: dict
    blocks: list

    def summary(self, max_blocks: int = 6) -> str:
        """One line: the multipliers of the blocks that train, from the head down."""
        training = [(name, factors) for name, _, factors, trainable in self.blocks if trainable]

        def text(name, factors):
            low, high = min(factors), max(factors)
            return f"{name} {low:.3g}" if low == high else f"{name} {low:.3g}-{high:.3g}"

        shown = [text(*b) for b in training]
        if len(shown) > max_blocks:
            shown = [*shown[: max_blocks - 2], "...", *shown[-2:]]
        count = f"{len(training)} training block{'' if len(training) == 1 else 's'}"
        return f"layer rates (x the phase's lr), {count} from the head: {', '.join(shown)}"


def _check_prefixes(model, lr_mult: dict) -> None:
    names = [layer.name for layer in iter_layers(model)]
    for prefix in lr_mult:
        if not any(name.startswith(prefix) for name in names):
            close = difflib.get_close_matches(prefix, names, n=4, cutoff=0.3)
            sample = close or [*names[1:4], names[-1]]
            raise ConfigError(
                f"lr_mult: no layer of {model.name!r} starts with {prefix!r}; its layers include "
                f"{', '.join(sample)}. Received lr_mult={lr_mult!r}"
            )


def _mult_of(name: str, lr_mult: dict) -> float:
    matches = [prefix for prefix in lr_mult if name.startswith(prefix)]
    return float(lr_mult[max(matches, key=len)]) if matches else 1.0


def layer_rates(model, config, family: str | None = None) -> LayerRates | None:
    """The rate multipliers of `config`'s ``layer_decay`` and ``lr_mult`` over `model`'s layers.

    Args:
        model: the model to train (its graph's layers; nested models are walked into).
        config: a `TrainConfig`.
        family: the registry family whose `BLOCK_PATTERNS` to use (None: all of them).

    Returns:
        None when the config sets neither; else a `LayerRates`.

    Raises:
        ConfigError: when an `lr_mult` prefix matches no layer, naming it and some real layers.
    """
    if config.layer_decay is None and not config.lr_mult:
        return None
    _check_prefixes(model, config.lr_mult)
    patterns = block_patterns(family)
    blocks: dict[str, list] = {}  # block -> its layers, in model order
    for layer in _weighted_layers(model):
        blocks.setdefault(block_of(layer.name, patterns), []).append(layer)
    decay = 1.0 if config.layer_decay is None else config.layer_decay
    multipliers, rows = {}, []
    for depth, (name, layers) in enumerate(reversed(list(blocks.items()))):
        factors = [decay**depth * _mult_of(layer.name, config.lr_mult) for layer in layers]
        for layer, factor in zip(layers, factors):
            # Trainable weights only: the optimizer sees no others, and compiling again for a
            # phase that unfreezes more computes them again.
            multipliers.update({w.path: factor for w in layer.trainable_weights if factor != 1.0})
        rows.append((name, depth, factors, any(layer.trainable_weights for layer in layers)))
    return LayerRates(multipliers, rows)
