"""Seeing inside a network: gradient flow, feature maps, ideal images, adversarial examples, Grad-CAM.

Each diagnostic returns data (arrays, pandas DataFrames) and has a separate ``plot_*`` function
that writes a PNG. Inputs are raw pixels in [0, 255], as every tfresnet model takes them.
"""

from tfresnet.inspect.common import Subject, load_image, load_subject, logits_model

__all__ = ["Subject", "load_image", "load_subject", "logits_model"]
