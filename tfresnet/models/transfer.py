"""Placeholder: being written."""


def load_keras_applications_weights(model, source, **kwargs):
    raise NotImplementedError


def load_weights(model, weights, spec=None):
    raise NotImplementedError
