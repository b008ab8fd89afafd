"""The main job behind `make demo`.

Until the trainer lands, the demo builds the small-image ResNet that the MNIST recipe will train,
prints its summary, and profiles the ResNet family at their default inputs: real numbers counted
from the built models, nothing canned.
"""

from __future__ import annotations

import tfresnet
from tfresnet.models.profile import count_macs
from tfresnet.models.profile import run as list_models_run


def main() -> int:
    model = tfresnet.create_model(
        "resnet20", input_shape=(28, 28, 1), num_classes=10, preprocessing="auto"
    )
    model.summary(line_length=100)
    print(f"\n{model.name} at 28x28x1: {model.count_params():,} parameters, "
          f"{count_macs(model) / 1e6:.1f}M multiply-adds per image\n")

    class Args:
        pattern, json, no_cache = "resnet", False, False

    return list_models_run(Args)


if __name__ == "__main__":
    raise SystemExit(main())
