"""Missing modality at test time: a fused model with some of its views dropped from the fusion.

`withheld(model, ("audio",))` is a copy of a trained model whose fusion runs over the remaining
views only: for the paper's methods (their `networks.FusionNet` members), averaging fusion (MCD and DE multimodal)
averages the remaining views' logits and σ and evidential fusion (RCML) averages the remaining
views' evidence (`losses.fuse_evidence`, in the order image, audio, text); for any other
method (trunks and heads), the method's own `predict` fuses the remaining views (a method
that needs more views than remain is refused). No view is fed zeros or any other
stand-in: the withheld branch is not run. The weights are shared with `model` (no copy).
"""

import copy

from .collator import ALL_MODALITIES


def parse(spec: str) -> tuple:
    """`image+audio` -> ("image", "audio"); ValueError naming what is accepted."""
    names = tuple(spec.split("+"))
    if not names or any(n not in ALL_MODALITIES for n in names) or len(set(names)) != len(names):
        raise ValueError(f"--withhold {spec!r}: expected modalities among {', '.join(ALL_MODALITIES)}, "
                         f"joined by + for several (image+audio)")
    return tuple(m for m in ALL_MODALITIES if m in names)


def name(withheld) -> str:
    return "+".join(withheld)


def withheld(model, modalities):
    """A shallow copy of `model` that fuses its views except `modalities` (module doc).

    ValueError if the model has no such view, would keep none, or has no per-view fusion
    (`members` of `FusionNet`s with `modalities` and `branches`)."""
    have = list(model.config.modalities)
    keep = [m for m in have if m not in modalities]
    if any(m not in have for m in modalities) or not keep:
        raise ValueError(f"cannot withhold {list(modalities)} from a model of {have}: "
                         f"each withheld view must be one of its views and at least one must remain")
    if getattr(model, "members", None) is None:  # a method on trunks and heads: it fuses the views it is given
        low = model.method.views[0]
        if len(keep) < low:
            raise ValueError(f"{model.config.method} fuses at least {low} views; withholding {list(modalities)} "
                             f"leaves {keep}")
        out = copy.copy(model)
        out.config = copy.deepcopy(model.config)
        out.config.modalities = keep
        return out
    members = getattr(model, "members", None)
    if members is None or not all(hasattr(m, "branches") and hasattr(m, "modalities") for m in members):
        raise ValueError(f"{type(model).__name__} has no per-view fusion to drop a view from")
    out = copy.copy(model)  # shares parameters; only the lists of views differ
    out.config = copy.deepcopy(model.config)
    out.config.modalities = keep
    out._modules = dict(model._modules)
    out._modules["members"] = type(members)(_member(m, keep) for m in members)
    return out


def _member(net, keep):
    view = copy.copy(net)
    view.modalities = tuple(keep)
    return view
