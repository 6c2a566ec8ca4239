"""What several commands share: device, precision and the teacher's forward pass
(:mod:`.helpers`), the teacher's preprocessing (:mod:`.preprocess`), run directories
(:mod:`.rundir`), the sparse spec of a store (:mod:`.sparse_spec`, :mod:`.sparse_options`),
``torchrun`` glue (:mod:`.distributed`) and the commands' lazy public names (:mod:`.lazy`).

It imports no command's package: the commands import it.
"""
