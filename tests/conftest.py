"""Shared fixtures for the tests of the recurrent core."""

import pytest


@pytest.fixture(
    params=[("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")],
    ids=["rnn_tanh", "rnn_relu", "lstm", "gru"],
)
def cell(request):
    """``(cell, nonlinearity)`` for every supported recurrent cell."""
    return request.param
