"""Third-party binarized CNV (brevitas_examples.bnn_pynq, built unmodified by
model_with_cfg('cnv_1w1a', pretrained=False) from the config shipped with the package; no download)
on 3x32x32 digits: a float `2x - 1` input transform and its own 8-bit power-of-two input
QuantIdentity, six bias-free 3x3 convs and three linear layers with 1-bit (binary, constant-scale)
weights, BatchNorm followed by 1-bit (binary) QuantIdentity activations, max pooling and a final
TensorNorm. Deployable: the preprocessing folds into the input quantizer, each binary activation after
a BatchNorm'd accumulator is a one-step thresholds op per channel, the TensorNorm folds into the logits'
accumulator (docs/integer_contract.md sections 1, 4, 19)."""

from brevitas_examples.bnn_pynq.models import model_with_cfg

from _common import network

SIZE = 32
CHANNELS = 3


def build():
    model, _cfg = model_with_cfg("cnv_1w1a", pretrained=False)
    return model


# binary activations have constant scales (calibration is a no-op); a short QAT run sets the
# weights and the BatchNorm / TensorNorm statistics
create_model, example_input, held_out_data = network(
    "thirdparty_cnv_1w1a", build, size=SIZE, channels=CHANNELS, epochs=2, batch=32, lr=5e-3)
