"""LUMA's uncertainty baselines (MC Dropout, Deep Ensemble, RCML) for the `transformers` Trainer."""
