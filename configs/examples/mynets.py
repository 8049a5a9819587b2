"""A user's network for the worked example (README, "Your own data and
networks"): the config names this module under ``modules`` and the network by
its registered type. Keras is imported inside the builder, so that planning
the workflow (which imports this module) stays light.
"""

from afterkernel.models import register


def _fits(input_shape, width: int = 8, kernel: int = 3):
    """The 'valid' convolution and the 2×2 pooling need at least kernel + 1 pixels a side."""
    if min(input_shape[:2]) < kernel + 1:
        return f"tiny-cnn needs images of at least {kernel + 1}x{kernel + 1} pixels"
    return None


@register("tiny-cnn", check=_fits)
def tiny_cnn(input_shape, width: int = 8, kernel: int = 3) -> list:
    """One ReLU convolution of ``width`` channels ('valid' padding), 2×2 max
    pooling, Flatten: the logit's input is the conjugate kernel's embedding."""
    from keras import layers

    return [layers.Conv2D(int(width), int(kernel), activation="relu", name="conv1"),
            layers.MaxPooling2D(2, name="pool1"), layers.Flatten(name="flatten")]
