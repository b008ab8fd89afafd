"""Using what was trained: predict on image files, evaluate on another dataset.

`tfresnet.using.predict.predict` (``tfresnet predict``) classifies image files through a run's
``model.keras`` or its SavedModel; `tfresnet.using.evaluate.evaluate` (``tfresnet evaluate``)
scores a run on any dataset `tfresnet.data.load` reads, matching classes by name. The learning-
rate range test, which comes before training, is `tfresnet.training.lr_find`.
"""
