"""brevitas_examples.bnn_pynq QuantResNet-18 (QuantBasicBlock, 4-bit weights and activations),
unmodified and without an input quantizer, as its users build it: its first QuantConv2d receives
the float image, so gapforge deploys it only with ``--input-quant`` (e.g. ``tools/deploy.py
--model-file tests/float_input_models/bnn_pynq_resnet18.py --input-quant uint8 --out DIR``).
Trained for a few optimizer steps on 3x32x32 digits with the float input (BatchNorm and
activation-range statistics from train-mode passes, as tests/test_networks/_thirdparty.py does)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test_networks"))

from _common import network, split  # noqa: E402
from _thirdparty import RESNET_CHANNELS, RESNET_SIZE, warm_up_train_mode  # noqa: E402


def build():
    from brevitas_examples.bnn_pynq.models.resnet import QuantBasicBlock, QuantResNet

    model = QuantResNet(block_impl=QuantBasicBlock, num_blocks=[2, 2, 2, 2], num_classes=10,
                        weight_bit_width=4, act_bit_width=4)
    return warm_up_train_mode(model, split(RESNET_SIZE, RESNET_CHANNELS)[0][0][:64])


create_model, example_input, held_out_data = network(
    "float_input_bnn_pynq_resnet18", build, size=RESNET_SIZE, channels=RESNET_CHANNELS, epochs=1, batch=32,
    lr=5e-4, calib_batches=0, max_steps=12)
