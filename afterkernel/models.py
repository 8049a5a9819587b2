"""Network architectures of the study (paper §2) and their registry.

Every network is a Keras ``Sequential`` model with Keras' default
initializers (Glorot-uniform kernels, zero biases) that ends in a single
``Dense(1)`` layer named ``"logit"``; the input of that layer is
h_{L-1}(x), the embedding of the conjugate projection K_c (paper §2).

A config names an architecture by a spec ``{"type": NAME, **kwargs}``;
``NAME`` is looked up in :data:`ARCHITECTURES`. To add a network::

    from afterkernel.models import register

    @register("my-net")
    def my_net(input_shape, width=64):
        return [keras.layers.Flatten(), keras.layers.Dense(width, activation="relu")]

A builder returns the hidden layers; :func:`build_model` adds the input and
the final ``logit`` layer. Its keyword arguments are the config's keys: their
defaults and annotations say which keys and types a config may give
(:func:`argument_errors`, checked at planning). ``register(name,
check=...)`` adds ``check(input_shape, **kwargs) -> message or None``, the
image sizes the network cannot take, also checked at planning.

A builder may live in a user's module: config key ``modules`` (or
``architectures.NAME.module``) names it, :func:`import_modules` imports it
from the working directory or the repository, and the architecture's spec
carries the module (``module`` key) so every job building the network imports
it too.
"""

from __future__ import annotations

import collections.abc
import functools
import importlib
import inspect
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any, Callable, Sequence

# Keras is imported inside the builders: the registry itself must stay
# importable at workflow parse time, where config validation reads it.
Builder = Callable[..., list]
ARCHITECTURES: dict[str, Builder] = {}
#: check(input_shape, **kwargs) -> None or why the network cannot take it
INPUT_CHECKS: dict[str, Callable[..., str | None]] = {}
#: where user modules are imported from: the working directory, the repository
MODULE_ROOTS = (Path.cwd, lambda: Path(__file__).resolve().parents[1])


def register(name: str, check: Callable[..., str | None] | None = None) -> Callable[[Builder], Builder]:
    """Register ``builder(input_shape, **kwargs) -> list of hidden layers``
    (with ``check``: see the module docstring)."""

    def deco(builder: Builder) -> Builder:
        ARCHITECTURES[name] = builder
        if check is None:
            INPUT_CHECKS.pop(name, None)
        else:
            INPUT_CHECKS[name] = check
        return builder

    return deco


def import_modules(names: Sequence[str]) -> None:
    """Import the user modules ``names`` (dotted), with the working directory
    and the repository on ``sys.path``; ``ImportError`` says where it looked."""
    roots = [str(root()) for root in MODULE_ROOTS]
    for root in roots:
        if root not in sys.path:
            sys.path.append(root)
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise ImportError(f"cannot import module {name!r} ({type(e).__name__}: {e}); modules are "
                              f"imported from the working directory and the repository ({', '.join(roots)})") from e


def module_files(spec: dict) -> list[str]:
    """The file of the user module of an architecture spec (none for the package's own)."""
    if not spec.get("module"):
        return []
    import_modules([spec["module"]])
    return [os.path.abspath(sys.modules[spec["module"]].__file__)]


def builder_module(kind: str) -> str | None:
    """The user module that registered ``kind`` (``None``: the package's own)."""
    module = ARCHITECTURES[kind].__module__
    return None if module == __name__ or module.startswith("afterkernel.") else module


def _matches(value: Any, hint: Any) -> bool:
    """Whether a YAML value fits a type hint (int, float, bool, str,
    sequences of those, unions); unknown hints accept anything."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is inspect.Parameter.empty or hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if (origin or hint) in (list, tuple, collections.abc.Sequence):  # YAML gives lists
        item = args[0] if args else Any
        return isinstance(value, (list, tuple)) and all(_matches(v, item) for v in value)
    try:
        return isinstance(value, origin or hint)
    except TypeError:
        return True


def _hints(builder: Builder) -> dict[str, Any]:
    try:
        return typing.get_type_hints(builder)
    except Exception:  # noqa: BLE001 - a user's unresolvable annotation: fall back to the defaults
        return {}


def argument_errors(name: str, spec: dict) -> list[str]:
    """The keys of the architecture ``name`` (spec ``{"type": ..., **kwargs}``)
    its builder does not take, or of the wrong type, one line each."""
    kind = spec["type"]
    params = list(inspect.signature(ARCHITECTURES[kind]).parameters.values())[1:]  # after input_shape
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return []
    allowed = {p.name: p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    hints, out = _hints(ARCHITECTURES[kind]), []
    for key, value in spec.items():
        where = f"config key 'architectures.{name}.{key}'"
        if key in ("type", "module"):
            continue
        if key not in allowed:
            out.append(f"{where}: unknown argument of builder {kind!r}; allowed: {', '.join(allowed) or 'none'}")
            continue
        default = allowed[key].default
        hint = hints.get(key, inspect.Parameter.empty)
        if hint is inspect.Parameter.empty and default not in (inspect.Parameter.empty, None):
            hint = list if isinstance(default, (list, tuple)) else float if isinstance(default, float) else type(default)
        if not _matches(value, hint):
            out.append(f"{where}: {value!r} has the wrong type for builder {kind!r}; expected "
                       f"{hint.__name__ if isinstance(hint, type) else str(hint).replace('typing.', '')}")
    missing = [k for k, p in allowed.items() if p.default is inspect.Parameter.empty and k not in spec]
    out += [f"config key 'architectures.{name}': builder {kind!r} needs argument {k!r}" for k in missing]
    return out


def input_errors(spec: dict, input_shape: Sequence[int]) -> str | None:
    """Why the network of ``spec`` cannot take images of ``input_shape``
    (its builder's ``check``), or ``None``."""
    check = INPUT_CHECKS.get(spec["type"])
    kwargs = {k: v for k, v in spec.items() if k not in ("type", "module")}
    return check(tuple(input_shape), **kwargs) if check else None


@register("vgg")
def vgg(input_shape, widths: Sequence[int] = (26, 52), convs_per_block: int = 2) -> list:
    """VGG-like net (paper §2): per block, ``convs_per_block`` 3×3 ReLU
    convolutions ('same' padding) with ``widths[b]`` channels, then 2×2 max
    pooling with stride 2; Flatten at the end (no hidden dense layer).
    ``widths=(26, 52)`` is the paper's net, ``(119, 238)`` the mega-VGG."""
    from keras import layers

    out = []
    for b, width in enumerate(widths):
        for c in range(convs_per_block):
            out.append(layers.Conv2D(int(width), 3, padding="same", activation="relu",
                                     name=f"conv{b + 1}_{c + 1}"))
        out.append(layers.MaxPooling2D(2, strides=2, padding="same", name=f"pool{b + 1}"))
    out.append(layers.Flatten(name="flatten"))
    return out


@register("fc")
def fc(input_shape, widths: Sequence[int] = (94, 94, 94, 94)) -> list:
    """Fully connected net (paper §2): one ReLU Dense layer per entry of
    ``widths``; the paper's net has four hidden layers of width 94."""
    from keras import layers

    out = [layers.Flatten(name="flatten")]
    out += [layers.Dense(int(w), activation="relu", name=f"dense{i + 1}")
            for i, w in enumerate(widths)]
    return out


@functools.cache
def sum_pixels_layer() -> type:
    """The ``SumPixels`` layer class: the sum of all input values of an
    example, shape (batch, 1). Built on first use to keep Keras lazy."""
    import keras

    @keras.saving.register_keras_serializable(package="afterkernel")
    class SumPixels(keras.layers.Layer):
        def call(self, x):
            return keras.ops.reshape(keras.ops.sum(x, axis=tuple(range(1, len(x.shape)))), (-1, 1))

        def compute_output_shape(self, input_shape):
            return (input_shape[0], 1)

    return SumPixels


@register("sum")
def sum_net(input_shape, width: int = 16) -> list:
    """Sum network (paper §2, for tests): the sum of all pixels, then a
    ReLU Dense layer of ``width``. Invariant to any pixel permutation, so
    its kernels are invariant to shifts and rotations away from the borders."""
    from keras import layers

    return [sum_pixels_layer()(name="sum"), layers.Dense(int(width), activation="relu", name="dense1")]


def build_model(spec: dict, input_shape: Sequence[int], seed: int | None = None):
    """Build the network of ``spec`` (``{"type": ..., "module": user module
    (optional), **kwargs}``) for inputs of ``input_shape`` (H, W, C). With ``seed``, Keras' global generators are
    seeded first, so the initial weights are a function of the seed."""
    import keras

    spec = dict(spec)
    kind = spec.pop("type")
    module = spec.pop("module", None)
    if module:
        import_modules([module])
    if kind not in ARCHITECTURES:
        raise KeyError(f"unknown architecture type {kind!r}; registered: {sorted(ARCHITECTURES)}")
    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    hidden = ARCHITECTURES[kind](tuple(input_shape), **spec)
    return keras.Sequential([keras.layers.Input(shape=tuple(input_shape)), *hidden,
                             keras.layers.Dense(1, name="logit")], name=kind)


def conjugate_model(model):
    """The map x ↦ h_{L-1}(x): everything but the final ``logit`` layer
    (the embedding of the conjugate projection, paper §2)."""
    import keras

    return keras.Model(model.inputs, model.layers[-1].input, name=f"{model.name}_conjugate")


def count_params(spec: dict, input_shape: Sequence[int]) -> int:
    """Number of trainable parameters of ``spec`` on inputs of ``input_shape``."""
    return int(build_model(spec, input_shape).count_params())
