"""Problems, data sources, preprocessing and the problem HDF5 file (paper §2).

- :mod:`~afterkernel.data.catalog`: the data sets a config names (``data``,
  ``datasets``), their sources and keras' class names;
- :mod:`~afterkernel.data.problems`: problem names (``mnist-3v8``,
  ``cifar10-cat-dog``, ``DATASET-AvB``) and their two classes;
- :mod:`~afterkernel.data.survey`: what a data set holds, read cheaply at
  planning; :mod:`~afterkernel.data.planning`: the config's data checks and
  ``prepare_data``'s inputs and params;
- :mod:`~afterkernel.data.sources`: where a data set comes from (``embedded``,
  ``dir``, ``keras``; ``npz`` and ``images`` in
  :mod:`~afterkernel.data.own_files`), with :mod:`~afterkernel.data.raw` (the
  checked raw arrays) and :mod:`~afterkernel.data.cifar_batches` (restricted
  unpickling);
- :mod:`~afterkernel.data.problem_data`: :func:`load_problem`, the two
  classes preprocessed as the paper does;
- :mod:`~afterkernel.data.problem_file`: the problem HDF5 file;
- :mod:`~afterkernel.data.sample`: the seeded test sample of the kernel
  metrics and the seeded per-class draws of the caps;
- :mod:`~afterkernel.data.job`: rule ``prepare_data``'s job.

Nothing here imports TensorFlow or Keras; ``keras.datasets`` is imported
only when the ``keras`` source is used.
"""

from afterkernel.data.catalog import DEFAULT_SOURCE, SOURCES
from afterkernel.data.errors import DataError
from afterkernel.data.job import prepare_problem_file
from afterkernel.data.problem_data import ProblemData, load_problem
from afterkernel.data.problem_file import read_problem, write_problem
from afterkernel.data.problems import CIFAR10_CLASSES, Problem, parse_problem
from afterkernel.data.sample import SUBSET_SEED, TEST_SAMPLE_SEED, draw_per_class, draw_test_sample
from afterkernel.data.sources import EMBEDDED

__all__ = [
    "CIFAR10_CLASSES",
    "DEFAULT_SOURCE",
    "DataError",
    "EMBEDDED",
    "Problem",
    "ProblemData",
    "SOURCES",
    "SUBSET_SEED",
    "TEST_SAMPLE_SEED",
    "draw_per_class",
    "draw_test_sample",
    "load_problem",
    "parse_problem",
    "prepare_problem_file",
    "read_problem",
    "write_problem",
]
