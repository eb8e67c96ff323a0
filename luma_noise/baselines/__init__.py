"""LUMA's uncertainty baselines (MC Dropout, Deep Ensemble, RCML and the methods of `methods`) for
the `transformers` Trainer.

    model = MethodModel(MethodConfig(method="mcd", modalities=("image", "audio", "text")))
    Trainer(model=model, args=TrainingArguments(..., remove_unused_columns=False),
            train_dataset=ds["train"], data_collator=LumaCollator(text_model="bert-base-uncased"),
            compute_metrics=compute_metrics, callbacks=[AnnealingCallback()]).train()
    report = evaluate(model, ds["test"], ood=ds["ood"], collator=...)

The command line is `python -m luma_noise.baselines {train,sweep,report,evaluate}`.
"""

from .collator import LumaCollator, featurize_dataset
from .metrics import compute_metrics, evaluate, predict
from .methods.model import MethodConfig, MethodModel
from .model import AnnealingCallback, LumaModel, LumaModelConfig

__all__ = ["LumaCollator", "featurize_dataset", "MethodModel", "MethodConfig", "LumaModel", "LumaModelConfig",
           "AnnealingCallback", "compute_metrics", "evaluate", "predict"]
