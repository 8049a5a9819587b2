"""The data layer's one error, and its advice on how to provide the data."""

from __future__ import annotations


class DataError(ValueError, RuntimeError):
    """Data missing, unreadable or not what was expected; the message says how to fix it."""


HOW_TO_PROVIDE = (
    "Provide the data in one of these ways (config keys `data.source` and `data.dir`):\n"
    "  - data.source: dir, data.dir: a folder holding keras' `mnist.npz` (MNIST) and/or\n"
    "    `cifar-10-batches-py/` with data_batch_1..data_batch_5 and test_batch (the\n"
    "    CIFAR-10 python version, cifar-10-python.tar.gz unpacked), or\n"
    "    `cifar10_cat_dog_jpeg_q75.npz` (JPEG-derived cat/dog only);\n"
    "  - data.source: keras, to download with keras.datasets (needs network access once);\n"
    "  - data.source: embedded, the small subset shipped with the package\n"
    "    (MNIST digits 3, 5, 6, 8 and CIFAR-10 cat/dog only)."
)

#: the advice for a user's own data set (``datasets.NAME``, sources npz and images)
OWN_DATA_ADVICE = (
    "Fix or replace the data set's file or folder (config key `datasets.NAME.path`): arrays x_train, "
    "y_train, x_test, y_test (an .npz) or train/<class>/ and test/<class>/ images (a folder); images "
    "(n, H, W) or (n, H, W, C) of one size, uint8 or finite floats in [0, 1]; one integer label per image."
)
