"""afterkernel: the after kernel study of Long, "Properties of the after kernel".

The package holds the science code of the workflow, one (sub)package per
stage: ``data`` (problems and their HDF5 files), ``models`` (architecture
registry), ``training`` (SGD with weight snapshots), ``kernels`` (after
kernel / FNTK and conjugate projection Gram matrices, their invariances,
metrics and evolution), ``transforms``, ``maxmargin`` (hard-margin SVM),
``aggregate`` (the tables), ``claims`` and ``figures``; ``plan`` spells the
runs and every path, ``vocabulary`` the study's words (docs/design.md).
Importing the package itself is cheap: TensorFlow is imported only by the
modules that need it.
"""

__version__ = "0.1.0"
