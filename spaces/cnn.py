"""The seed's CIFAR CNN space: 1-4 conv layers and 1-3 linear layers, each layer's width searched.

Exactly the seed's Optuna study: ``num_conv_layers`` 1-4, ``num_fc_layers`` 1-3, ``num_filter_i``
40-64 step 8 for each conv layer, ``num_neurons_i`` 32-64 step 16 for each hidden linear layer,
``optimizer`` in Adam/RMSprop/SGD and ``lr`` in 1e-3..1e-2 on a log scale. Widths of layers that
do not exist are inactive (absent from the config), so the depth is searched too.
"""

from __future__ import annotations

from spaces.space import Categorical, Condition, Float, Integer, Param, Space

__all__ = ["INPUT_SIZES", "MAX_CONV_LAYERS", "MAX_FC_LAYERS", "cifar_cnn_res_space",
           "cifar_cnn_space"]

MAX_CONV_LAYERS = 4
MAX_FC_LAYERS = 3
INPUT_SIZES = (16, 24, 32)  # input resolutions the resolution-searching space chooses from


def cifar_cnn_space() -> Space:
    """The seed's variable-depth CNN space."""
    params: list[Param] = [
        Integer("num_conv_layers", 1, MAX_CONV_LAYERS),
        Integer("num_fc_layers", 1, MAX_FC_LAYERS),
    ]
    for i in range(MAX_CONV_LAYERS):
        # Layer i exists when there are at least i + 1 conv layers; layer 0 always exists.
        cond = Condition("num_conv_layers", ">=", i + 1) if i else None
        params.append(Integer(f"num_filter_{i}", 40, 64, step=8, condition=cond, minimum=1))
    for i in range(MAX_FC_LAYERS - 1):
        # Hidden linear layer i exists when there are at least i + 2 linear layers.
        params.append(
            Integer(f"num_neurons_{i}", 32, 64, step=16,
                    condition=Condition("num_fc_layers", ">=", i + 2), minimum=1)
        )
    params += [
        Categorical("optimizer", ("Adam", "RMSprop", "SGD")),
        Float("lr", 1e-3, 1e-2, log=True),
    ]
    return Space("cifar_cnn", tuple(params))


def cifar_cnn_res_space() -> Space:
    """The seed's space plus the input resolution (images resized on the device), a decision
    the seed names for RL and evolution."""
    base = cifar_cnn_space()
    return Space("cifar_cnn_res", (Categorical("input_size", INPUT_SIZES), *base.params))
