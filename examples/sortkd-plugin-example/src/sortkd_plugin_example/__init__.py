"""An example sortkd-cache plugin.

It registers, through entry points (see pyproject.toml), what a researcher typically brings:

* ``pooled_mlp``: a student architecture (``sortkd_cache.models``), a callable called as
  ``pooled_mlp(num_classes=C, in_chans=K)``; also usable without any registration as
  ``--student sortkd_plugin_example.models:pooled_mlp``;
* ``logit_mse``: a loss (``sortkd_cache.losses``), Ba & Caruana's logit regression;
* ``lift``: a sort method (``sortkd_cache.sort_methods``): ``sort --method lift`` writes the
  ``lift`` kind, ``train --logits lift`` reads it, ``--online-teacher`` applies it per batch.

Nothing here imports sortkd-cache's private modules: only its public API.
"""
