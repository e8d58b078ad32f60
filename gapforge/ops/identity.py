"""Pass-through constructs: they disappear from the IR (their output is their input)."""

from torch import nn

from gapforge.ops._base import Frontend


def _lower_identity(ctx) -> None:
    x = ctx.input_tensor(0)
    if ctx.node.kind == "function" and ctx.node.type_name in ("to", "type", "float"):
        for a in list(ctx.node.args[1:]) + list(ctx.node.kwargs.values()):
            if a not in (None,) and str(a) not in ("torch.float32", "float32", "torch.FloatTensor"):
                ctx.fail(f"changes the tensor's dtype or device ({a})")
    if ctx.node.kind == "function" and ctx.node.type_name in ("dropout", "dropout2d"):
        p, training = ctx.arg(1, "p", 0.5), ctx.arg(2, "training", True)
        if training and p:  # F.dropout's default training=True drops even in an eval-mode model
            ctx.fail(f"F.{ctx.node.type_name}(p={p}) with training=True (its default) drops values even in eval "
                     "mode", hint="pass training=self.training (or use an nn.Dropout module)")
    ctx.bind_all(x)


FRONTENDS = [
    Frontend(
        name="torch.nn.Identity / Dropout (eval) / contiguous / clone / detach / .float()",
        modules=(nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout),
        functions=("contiguous", "clone", "detach", "float", "to", "type", "dropout", "dropout2d"),
        lowers_to=(),
        doc="No operation in an eval-mode graph; removed during extraction. .to()/.type() are "
            "accepted only when they keep float32 on the CPU; F.dropout only with training=False "
            "(e.g. training=self.training), since its default drops values in eval mode too.",
        lower=_lower_identity,
    ),
]
