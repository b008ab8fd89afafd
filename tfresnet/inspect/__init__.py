"""Seeing inside a network: gradient flow, feature maps, ideal images, adversarial examples, Grad-CAM.

Each diagnostic returns data (arrays, pandas DataFrames) and has a separate ``plot_*`` function
that writes a PNG. Inputs are raw pixels in [0, 255], as every tfresnet model takes them.
"""

from tfresnet.inspect.adversarial import fgsm, pgd, plot_adversarial, plot_robustness, robustness
from tfresnet.inspect.budgets import SmallestEps, default_eps, smallest_eps
from tfresnet.inspect.common import Subject, load_image, load_subject, logits_model
from tfresnet.inspect.features import feature_maps, plot_feature_maps
from tfresnet.inspect.gradcam import grad_cam, plot_grad_cam, saliency, smoothgrad
from tfresnet.inspect.gradients import (
    GradientFlow,
    gradient_norms,
    layer_norms,
    plot_gradient_flow,
    plot_gradient_flow_run,
    plot_gradient_norms,
)
from tfresnet.inspect.ideal import ideal_image, ideal_images, plot_ideal_images

__all__ = ["Subject", "load_image", "load_subject", "logits_model",
           "fgsm", "pgd", "robustness", "plot_robustness", "plot_adversarial",
           "default_eps", "smallest_eps", "SmallestEps",
           "GradientFlow", "gradient_norms", "layer_norms", "plot_gradient_norms",
           "plot_gradient_flow", "plot_gradient_flow_run",
           "feature_maps", "plot_feature_maps", "ideal_image", "ideal_images", "plot_ideal_images",
           "grad_cam", "saliency", "smoothgrad", "plot_grad_cam"]
