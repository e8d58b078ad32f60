"""brevitas_examples' CNV with binary weights and activations (bnn_pynq cfg cnv_1w1a), as its users load it: an
8-bit power-of-two input quantizer on 2x - 1, six binary 3x3 convs and three binary linears, each but the last
followed by BatchNorm and a binary QuantIdentity, max pooling of binary codes, a TensorNorm on the logits
(tests/user_models/_bnn_pynq.py)."""

from _bnn_pynq import hooks

create_model, example_input, held_out_data = hooks("cnv_1w1a", 32, 3)
