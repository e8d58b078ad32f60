"""brevitas_examples' imagenet MobileNet v1, unmodified and without an input quantizer, as its users
build it: its first QuantConv2d receives the float image, so gapforge deploys it only with
``--input-quant`` (e.g. ``tools/deploy.py --model-file tests/float_input_models/mobilenet_v1.py
--input-quant uint8 --out DIR``). Reduced width, 8-bit, trained briefly on 3x64x64 digits with the
float input (BatchNorm statistics warmed up first, as tests/test_networks/_thirdparty.py does)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test_networks"))

from _common import network, split  # noqa: E402
from _thirdparty import MOBILENET_CHANNELS, MOBILENET_SIZE, MOBILENET_WIDTHS, warm_up_batchnorm  # noqa: E402


def build():
    from brevitas_examples.imagenet_classification.models.mobilenetv1 import MobileNet

    model = MobileNet(channels=MOBILENET_WIDTHS, first_stage_stride=False, act_bit_width=8, weight_bit_width=8,
                      first_layer_bit_width=8, last_layer_bit_width=8, round_average_pool=True,
                      avg_pool_kernel_size=2, in_channels=MOBILENET_CHANNELS, num_classes=10)
    return warm_up_batchnorm(model, split(MOBILENET_SIZE, MOBILENET_CHANNELS)[0][0][:256])


create_model, example_input, held_out_data = network(
    "float_input_mobilenet_v1", build, size=MOBILENET_SIZE, channels=MOBILENET_CHANNELS, epochs=2, batch=32)
