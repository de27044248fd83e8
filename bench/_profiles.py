"""The cases of each profile: "quick" for feedback and the smoke test, "full" for the record."""

from dataclasses import dataclass
from itertools import product

from _fit import FitCase
from _problem import Shape

CELLS = ("rnn", "lstm", "gru")
LOSSES = ("s2v", "s2s")


@dataclass(frozen=True)
class Profile:
    """Cases per benchmark and how hard to sample them (see :class:`_suites.Settings`).

    ``train`` holds ``(shape, loss)`` pairs; ``stream`` shapes have ``B == 1`` and ``T`` calls;
    ``fit`` holds :class:`~_fit.FitCase` instances.
    """

    train: tuple
    infer: tuple
    stream: tuple
    varlen: tuple
    fit: tuple
    repeats: int
    min_time: float
    max_time: float


def _small_data_fit(epochs):
    """The issue's small-data fit: 2000 short sequences, hidden 16, a ragged last batch of 16.

    Many small steps, so that what happens around the kernels counts (PyTorch's GRU takes
    ~0.2 s an epoch at one thread here: a quick run stays near a second).
    """
    return tuple(
        FitCase(cell, "float32", N=2000, T=10, I=4, H=16, B=32, epochs=epochs)
        for cell in ("lstm", "gru")
    )


def _full():
    grid = [
        Shape(cell, "float32", B, T, n_in, H)
        for B, T, n_in, H, cell in product((32, 128), (20, 100), (8, 64), (32, 128, 512), CELLS)
    ]
    float64 = [
        Shape(cell, "float64", B, T, 64, H)
        for B, T, H in ((32, 100, 32), (32, 100, 128), (128, 20, 512))
        for cell in CELLS
    ]
    return Profile(
        train=tuple((shape, loss) for shape in grid + float64 for loss in LOSSES),
        infer=tuple(
            Shape(cell, "float32", 1024, 50, 32, H) for H in (32, 128, 512) for cell in CELLS
        ),
        stream=tuple(
            Shape(cell, "float32", 1, 200, 32, H) for H in (32, 128, 512) for cell in CELLS
        ),
        varlen=tuple(Shape(cell, "float32", 128, 100, 64, H) for H in (32, 128) for cell in CELLS),
        fit=tuple(
            FitCase(cell, "float32", N=2048, T=50, I=8, H=64, B=64, epochs=3) for cell in CELLS
        )
        + _small_data_fit(epochs=5),
        repeats=5,
        min_time=0.05,
        max_time=4.0,
    )


def _quick():
    small, medium = (32, 20, 8, 32), (32, 100, 64, 128)
    return Profile(
        train=tuple(
            [(Shape(cell, "float32", *small), loss) for cell in CELLS for loss in LOSSES]
            + [(Shape(cell, "float32", *medium), "s2s") for cell in CELLS]
            + [(Shape(cell, "float64", *small), "s2s") for cell in CELLS]
        ),
        infer=tuple(Shape(cell, "float32", 1024, 20, 8, 32) for cell in CELLS),
        stream=tuple(Shape(cell, "float32", 1, 50, 8, 32) for cell in CELLS),
        varlen=tuple(Shape(cell, "float32", 32, 50, 8, 32) for cell in CELLS),
        fit=tuple(
            FitCase(cell, "float32", N=256, T=20, I=4, H=16, B=32, epochs=1) for cell in CELLS
        )
        + _small_data_fit(epochs=2),
        repeats=3,
        min_time=0.01,
        max_time=1.0,
    )


PROFILES = {"quick": _quick, "full": _full}
