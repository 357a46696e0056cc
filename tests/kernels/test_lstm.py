"""The fused LSTM layer (kernels/lstm.py) against its composite reference
(``nn.rnn._lstm_layer``): forward, gradients, second order, masks, odd shapes."""

import pytest
import rnn_checks as rc
from kernel_utils import fused_on  # noqa: F401  (autouse: kernels on, whatever the env)

KIND = "lstm"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, [6, 3, 1, 6]], ids=["full", "lengths"])
def test_matches_reference(device, lengths, reverse, dtype):
    rc.check_matches_reference(KIND, device, lengths, reverse, dtype)


@pytest.mark.parametrize("reverse", [False, True])
def test_gradcheck_fused_function(device, reverse):
    rc.check_gradcheck(KIND, device, reverse)


def test_create_graph_differentiates_the_reference(device):
    rc.check_second_order(KIND, device)


@pytest.mark.parametrize(
    "dtype, bidirectional, batch_first, bias, lengths",
    [("float32", False, False, True, None), ("float64", True, True, False, [7, 2, 5]),
     ("float32", True, False, True, [1, 7, 3]), ("float64", False, True, True, [7, 7, 7])],
)
def test_module_fused_vs_composite(device, dtype, bidirectional, batch_first, bias, lengths):
    rc.check_module_paths(KIND, device, dtype, bidirectional, batch_first, bias, lengths)


def test_noncontiguous_inputs(device):
    rc.check_noncontiguous(KIND, device)


def test_all_masked_row(device):
    rc.check_all_masked_row(KIND, device)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_extreme_inputs(device, dtype):
    rc.check_extreme_inputs(KIND, device, dtype)


def test_use_fused_switch(device):
    rc.check_switch(KIND, device)
