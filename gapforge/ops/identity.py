"""Pass-through constructs: they disappear from the IR (their output is their input)."""

from torch import nn

from gapforge.ops._base import Frontend


def _lower_identity(ctx) -> None:
    x = ctx.input_tensor(0)
    if ctx.node.kind == "function" and ctx.node.type_name in ("to", "type", "float"):
        for a in list(ctx.node.args[1:]) + list(ctx.node.kwargs.values()):
            if a not in (None,) and str(a) not in ("torch.float32", "float32", "torch.FloatTensor"):
                ctx.fail(f"changes the tensor's dtype or device ({a})")
    ctx.bind_all(x)


FRONTENDS = [
    Frontend(
        name="torch.nn.Identity / Dropout (eval) / contiguous / clone / detach / .float()",
        modules=(nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout),
        functions=("contiguous", "clone", "detach", "float", "to", "type", "dropout", "dropout2d"),
        lowers_to=(),
        doc="No operation in an eval-mode graph; removed during extraction. .to()/.type() are "
            "accepted only when they keep float32 on the CPU.",
        lower=_lower_identity,
    ),
]
