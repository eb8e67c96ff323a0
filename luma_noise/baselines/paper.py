"""The LUMA paper's published baseline numbers (arXiv 2406.09864, Tables 1-3), as data.

Transcribed by hand from `shared/BASELINES.md` §7 (real data, the reference code); these are
the only hand-typed numbers of the report. Rows are (method, modality); the paper's variant
columns map to our configs as `PAPER_VARIANTS` says. The paper's "label noise" column is the
reference tool's default label-noise proportion, 0.3 (LUMA_SOURCES.md), so we compare it with
`label_noise_0.3`.
"""

# The paper's variant columns -> our variant names.
PAPER_VARIANTS = {"diversity": "low_diversity", "label": "label_noise_0.3", "sample": "sample_noise"}

MODELS = (("mcd", "image"), ("mcd", "audio"), ("mcd", "text"), ("mcd", "multimodal"),
          ("de", "image"), ("de", "audio"), ("de", "text"), ("de", "multimodal"),
          ("rcml", "multimodal"))

# Table 3: clean accuracy, then the absolute change under diversity, label noise, sample noise.
_TABLE3 = (
    (0.335, +0.058, -0.306, +0.019),
    (0.867, -0.025, -0.784, -0.155),
    (0.965, -0.027, -0.864, -0.144),
    (0.991, -0.010, -0.874, -0.063),
    (0.387, +0.066, -0.166, +0.019),
    (0.912, -0.003, -0.809, -0.149),
    (0.973, -0.023, -0.864, -0.125),
    (0.996, -0.006, -0.849, -0.042),
    (0.973, -0.128, -0.833, -0.148),
)

# Table 2: OOD AUROC of the epistemic uncertainty, clean data.
_TABLE2 = (0.54, 0.47, 0.53, 0.50, 0.54, 0.49, 0.54, 0.50, 0.91)

# Table 1: clean aleatoric, clean epistemic (absolute), then the relative change in percent
# (aleatoric, epistemic) under diversity, label noise, sample noise.
_TABLE1 = (
    (1.00, 1.03, -15.73, -11.66, +59.20, +54.51, +4.44, +2.18),
    (0.52, 0.70, -5.54, +2.16, +96.63, +54.49, +23.12, +14.40),
    (0.37, 1.01, -3.91, -2.62, +93.59, +2.41, +64.96, -2.03),
    (0.26, 0.78, -8.52, -1.21, +122.44, +11.60, +59.14, +9.89),
    (1.45, 1.40, -37.49, -8.54, -7.43, +0.24, -18.46, -3.22),
    (0.56, 0.99, -27.39, -3.34, +156.40, +50.43, +70.26, +34.41),
    (0.42, 1.01, +5.02, -6.15, +81.26, -0.51, +62.24, -7.11),
    (0.31, 0.82, -22.80, -3.40, +115.15, +20.62, +45.97, +5.54),
    (1.99, 0.43, +8.34, +16.16, +64.72, +106.16, +36.19, +58.21),
)


def _values() -> dict:
    """{(measure, variant, method, modality): value}; measures as in `summary.MEASURES`."""
    out = {}
    variants = [PAPER_VARIANTS[k] for k in ("diversity", "label", "sample")]
    for (method, modality), acc, auroc, t1 in zip(MODELS, _TABLE3, _TABLE2, _TABLE1):
        out[("accuracy", "clean", method, modality)] = acc[0]
        out[("ood_auroc", "clean", method, modality)] = auroc
        out[("aleatoric", "clean", method, modality)] = t1[0]
        out[("epistemic", "clean", method, modality)] = t1[1]
        for i, variant in enumerate(variants):
            out[("accuracy_change", variant, method, modality)] = acc[1 + i]
            out[("aleatoric_rel_change", variant, method, modality)] = t1[2 + 2 * i] / 100
            out[("epistemic_rel_change", variant, method, modality)] = t1[3 + 2 * i] / 100
    return out


PAPER = _values()


def paper_value(measure: str, variant: str, method: str, modality: str):
    """The paper's value (relative changes as fractions, 0.5920 for +59.20 %) or None; a variant
    built as the reference tool effectively built it has the paper's value of its config."""
    return PAPER.get((measure, variant.removesuffix("{reference_effective=true}"), method, modality))
