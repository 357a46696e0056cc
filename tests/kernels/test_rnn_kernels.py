"""The fused LSTM and GRU layers (kernels/lstm.py, kernels/gru.py) against their composite
references (``references.lstm_layer``, ``references.gru_layer``): forward, gradients, second order,
masks, odd shapes."""

import pytest
import rnn_checks as rc
from kernel_utils import fused_on  # noqa: F401  (autouse: kernels on, whatever the env)



@pytest.fixture(params=["lstm", "gru"])
def kind(request):
    return request.param


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, [6, 3, 1, 6]], ids=["full", "lengths"])
def test_matches_reference(kind, device, lengths, reverse, dtype):
    rc.check_matches_reference(kind, device, lengths, reverse, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, [6, 3, 1, 6]], ids=["full", "lengths"])
def test_final_state_only(kind, device, lengths, reverse, dtype):
    rc.check_final_state_only(kind, device, lengths, reverse, dtype)


@pytest.mark.parametrize("reverse", [False, True])
def test_gradcheck_fused_function(kind, device, reverse):
    rc.check_gradcheck(kind, device, reverse)


def test_create_graph_differentiates_the_reference(kind, device):
    rc.check_second_order(kind, device)


@pytest.mark.parametrize(
    "dtype, bidirectional, batch_first, bias, lengths",
    [("float32", False, False, True, None), ("float64", True, True, False, [7, 2, 5]),
     ("float32", True, False, True, [1, 7, 3]), ("float64", False, True, True, [7, 7, 7])],
)
def test_module_fused_vs_composite(kind, device, dtype, bidirectional, batch_first, bias, lengths):
    rc.check_module_paths(kind, device, dtype, bidirectional, batch_first, bias, lengths)


def test_noncontiguous_inputs(kind, device):
    rc.check_noncontiguous(kind, device)


def test_all_masked_row(kind, device):
    rc.check_all_masked_row(kind, device)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_extreme_inputs(kind, device, dtype):
    rc.check_extreme_inputs(kind, device, dtype)


def test_use_fused_switch(kind, device):
    rc.check_switch(kind, device)
