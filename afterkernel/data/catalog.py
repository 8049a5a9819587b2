"""The data sets a config names (config keys ``data`` and ``datasets``).

A data set is a plain mapping (a *spec*, JSON-able: it reaches the
``prepare_data`` job as a param) with keys ``source`` (:data:`SOURCES`),
``dataset`` (the keras / embedded / ``dir`` data set it is, for those
sources), ``labels`` (CIFAR-100: ``fine`` or ``coarse``), ``path`` (the
folder or file of ``dir``, ``npz`` and ``images``) and ``class_names``
(optional names of an ``npz`` file's labels 0, 1, ...).

``mnist`` and ``cifar10`` are always there, from the ``data`` section (the
paper's problems keep their names); ``datasets: {NAME: spec}`` adds others
or replaces those two. A data set's name has no ``-``: a problem
``NAME-AvB`` splits at its first one.
"""

from __future__ import annotations

import os
from typing import Any

SOURCES = ("embedded", "dir", "keras", "npz", "images")
DEFAULT_SOURCE = "embedded"
#: sources whose ``dataset`` is one of keras' (or the embedded / dir layouts')
NAMED_SOURCES = {"embedded": ("mnist", "cifar10"), "dir": ("mnist", "cifar10"),
                 "keras": ("mnist", "fashion_mnist", "cifar10", "cifar100")}
#: sources reading a file or folder of the user's (key ``path``)
PATH_SOURCES = ("dir", "npz", "images")

DIGITS = tuple(str(d) for d in range(10))
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
FASHION_MNIST_CLASSES = ("t_shirt", "trouser", "pullover", "dress", "coat",
                         "sandal", "shirt", "sneaker", "bag", "ankle_boot")
CIFAR100_FINE = tuple("""
apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly
camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup
dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower
leopard lion lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid
otter palm_tree pear pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray
road rocket rose sea seal shark shrew skunk skyscraper snail snake spider squirrel streetcar
sunflower sweet_pepper table tank telephone television tiger tractor train trout tulip turtle
wardrobe whale willow_tree wolf woman worm""".split())
CIFAR100_COARSE = tuple("""
aquatic_mammals fish flowers food_containers fruit_and_vegetables household_electrical_devices
household_furniture insects large_carnivores large_man_made_outdoor_things
large_natural_outdoor_scenes large_omnivores_and_herbivores medium_mammals
non_insect_invertebrates people reptiles small_mammals trees vehicles_1 vehicles_2""".split())

#: keras' data sets: (class names, image shape as keras returns it)
KNOWN = {
    "mnist": (DIGITS, (28, 28)),
    "fashion_mnist": (FASHION_MNIST_CLASSES, (28, 28)),
    "cifar10": (CIFAR10_CLASSES, (32, 32, 3)),
    "cifar100": (CIFAR100_FINE, (32, 32, 3)),
    "cifar100_coarse": (CIFAR100_COARSE, (32, 32, 3)),
}
BUILTIN = ("mnist", "cifar10")


def known_key(spec: dict[str, Any]) -> str:
    """The :data:`KNOWN` entry (and ``resources/keras/`` file stem) of a
    keras, embedded or dir spec: CIFAR-100's coarse labels are their own."""
    base = spec["dataset"]
    return f"{base}_coarse" if base == "cifar100" and spec.get("labels") == "coarse" else base


def builtin_spec(dataset: str, source: str = DEFAULT_SOURCE,
                 directory: str | os.PathLike | None = None) -> dict[str, Any]:
    """The spec of ``mnist`` or ``cifar10`` from the ``data`` section."""
    spec: dict[str, Any] = {"source": source, "dataset": dataset}
    if source == "dir":
        spec["path"] = None if directory is None else str(directory)
    return spec


def dataset_specs(config: dict) -> dict[str, dict[str, Any]]:
    """Every data set of ``config``: the built-in two from ``data``, then ``datasets``."""
    data = config.get("data", {})
    out = {name: builtin_spec(name, data.get("source", DEFAULT_SOURCE), data.get("dir"))
           for name in BUILTIN}
    out.update({name: dict(spec) for name, spec in (config.get("datasets") or {}).items()})
    return out


def spec_errors(name: str, spec: dict[str, Any]) -> list[str]:
    """What is wrong with the keys of one ``datasets`` entry (no file is read)."""
    key, source = f"datasets.{name}", spec.get("source")
    out = []
    if "-" in name:
        out.append(f"config key '{key}': a data set name has no '-' (problems are NAME-AvB)")
    if source in NAMED_SOURCES:
        allowed = NAMED_SOURCES[source]
        if spec.get("dataset") not in allowed:
            out.append(f"config key '{key}.dataset': {spec.get('dataset')!r} is not a {source} data set; "
                       f"allowed values: {', '.join(allowed)}")
    elif "dataset" in spec:
        out.append(f"config key '{key}.dataset': only for sources {', '.join(NAMED_SOURCES)}")
    if source in PATH_SOURCES and not spec.get("path"):
        out.append(f"config key '{key}.path': source {source!r} needs the path of its "
                   f"{'file' if source == 'npz' else 'folder'}")
    if "labels" in spec and spec.get("dataset") != "cifar100":
        out.append(f"config key '{key}.labels': only for the keras data set cifar100")
    if "class_names" in spec and source != "npz":
        out.append(f"config key '{key}.class_names': only for source npz (the others name their classes)")
    return out
