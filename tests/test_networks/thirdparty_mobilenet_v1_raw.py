"""Third-party MobileNet v1 (brevitas_examples.imagenet_classification.models.mobilenetv1.MobileNet) exactly as
the package builds it, at the reduced width of thirdparty_mobilenet_v1, WITHOUT the input QuantIdentity that
network adds: the model assumes an 8-bit image and its first convolution reads the float input. Expected NOT to
be deployable: the tools must refuse it in one line naming the layer and the fix (an input quantizer), not
produce wrong code. Not trained (a refusal needs no weights); BatchNorm statistics warmed up and quantizers
calibrated on digits, so the only problem is the missing input quantizer."""

import torch
from brevitas.graph.calibrate import calibration_mode

from _common import example, held_out, split
from _thirdparty import MOBILENET_CHANNELS, MOBILENET_SIZE, MOBILENET_WIDTHS, warm_up_batchnorm


def create_model():
    from brevitas_examples.imagenet_classification.models.mobilenetv1 import MobileNet

    torch.manual_seed(0)
    model = MobileNet(channels=MOBILENET_WIDTHS, first_stage_stride=False, act_bit_width=8, weight_bit_width=8,
                      round_average_pool=True, avg_pool_kernel_size=2, in_channels=MOBILENET_CHANNELS,
                      num_classes=10)
    x = split(MOBILENET_SIZE, MOBILENET_CHANNELS)[0][0][:64]
    model = warm_up_batchnorm(model, x)
    model.eval()
    with torch.no_grad(), calibration_mode(model):
        model(x)
    return model.eval()


def example_input():
    return example(MOBILENET_SIZE, MOBILENET_CHANNELS)


def held_out_data():
    return held_out(MOBILENET_SIZE, MOBILENET_CHANNELS)
