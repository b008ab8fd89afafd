"""Published numbers to reproduce: the experiments as data, the recipes' configs built from them.

- `nielsen`: Nielsen, "Neural Networks and Deep Learning", chapter 6's MNIST ladder (`RUNGS`)
  and chapter 5's deep sigmoid networks (`CH5_DEPTHS`).
- `degradation`: He et al. 2015, figure 6, plain against residual networks of 20 and 56 layers.

Recipes (`recipes/nielsen_rung*.py`, `recipes/nielsen_ch5.py`, `recipes/he_degradation.py`) are
one line over these tables; `tfresnet bench --suite reproduce` runs them and prints our figures
beside the published ones.
"""
