"""brevitas_examples' LFC with binary weights and activations (bnn_pynq cfg lfc_1w1a), as its users load it; its
first quantizer is binary too, on the preprocessed input 2x - 1 (tests/user_models/_bnn_pynq.py)."""

from _bnn_pynq import hooks

create_model, example_input, held_out_data = hooks("lfc_1w1a", 28, 1)
