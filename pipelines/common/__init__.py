"""What several commands share: device, precision and the teacher's forward pass
(:mod:`.helpers`), the teacher's preprocessing (:mod:`.preprocess`), run directories
(:mod:`.rundir`) (a sparse store's options and spec are :mod:`sortkd_cache.sparse`'s),
and ``torchrun`` glue (:mod:`.distributed`). The commands' lazy public names come from
:func:`sortkd_cache.lazy_names`, as the library's own packages' do.

It imports no command's package: the commands import it.
"""
