"""What several commands share: device, precision and the teacher's forward pass
(:mod:`.helpers`), the teacher's preprocessing (:mod:`.preprocess`), run directories
(:mod:`.rundir`), the sparse spec of a store (:mod:`.sparse_spec`, :mod:`.sparse_options`),
and ``torchrun`` glue (:mod:`.distributed`). The commands' lazy public names come from
:func:`sortkd_cache.lazy_names`, as the library's own packages' do.

It imports no command's package: the commands import it.
"""
