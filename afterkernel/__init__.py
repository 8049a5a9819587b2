"""afterkernel: the after kernel study of Long, "Properties of the after kernel".

The package holds the science code of the workflow, one module per job:
``data`` (problems and their HDF5 files), ``models`` (architecture registry),
``training`` (SGD with weight snapshots), ``kernels`` (after kernel / FNTK and
conjugate projection Gram matrices), ``transforms`` and ``invariances``,
``maxmargin`` (hard-margin SVM), ``aggregate`` and ``figures``.
Importing the package itself is cheap: TensorFlow is imported only by the
modules that need it.
"""

__version__ = "0.1.0"
