"""The report's figures, with matplotlib's Agg backend (no display needed). Small PNGs (dpi 80)."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DPI = 80
COLUMNS = 4


def _grid(n: int, width: float = 3.0, height: float = 2.6):
    rows = max(1, math.ceil(n / COLUMNS))
    cols = min(n, COLUMNS) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat


def _save(fig, path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def figure10(points, path) -> None:
    """Uncertainty against the label-noise proportion, one column per method, rows aleatoric/epistemic.

    points: {(method, modality): {measure: [(proportion, values over seeds), ...]}}; the band
    and error bars show mean ± std over seeds (no band for one seed).
    """
    methods = list(dict.fromkeys(method for method, _ in points))
    fig, axes = plt.subplots(2, len(methods), figsize=(3.2 * len(methods), 5.2), squeeze=False)
    for col, method in enumerate(methods):
        for row, measure in enumerate(("aleatoric", "epistemic")):
            ax = axes[row, col]
            for (m, modality), series in points.items():
                if m != method or not series.get(measure):
                    continue
                xs = np.array([p for p, _ in series[measure]])
                means = np.array([np.mean(v) for _, v in series[measure]])
                stds = np.array([np.std(v, ddof=1) if len(v) > 1 else 0.0 for _, v in series[measure]])
                ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=modality)
                ax.fill_between(xs, means - stds, means + stds, alpha=0.15)
            ax.set_title(f"{method}: {measure}")
            ax.set_xlabel("label-noise proportion")
            ax.set_xlim(-0.02, 0.52)
            ax.legend(fontsize=7)
    _save(fig, path)


def reliability_grid(entries, path) -> None:
    """entries: [(title, mean confidence (B,), accuracy (B,), count (B,))]: one reliability diagram each."""
    fig, axes = _grid(len(entries))
    for ax, (title, conf, acc, count) in zip(axes, entries):
        edges = np.linspace(0, 1, len(conf) + 1)
        ax.bar(edges[:-1], np.nan_to_num(acc), width=np.diff(edges), align="edge", edgecolor="k", alpha=0.7)
        ax.plot([0, 1], [0, 1], "k--", lw=1)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("confidence")
        ax.set_ylabel("accuracy")
    _save(fig, path)


def epistemic_grid(entries, path) -> None:
    """entries: [(title, test epistemic (N,), ood epistemic (M,))]: overlaid density histograms."""
    fig, axes = _grid(len(entries))
    for ax, (title, test, ood) in zip(axes, entries):
        bins = np.histogram_bin_edges(np.concatenate([test, ood]), bins=30)
        ax.hist(test, bins=bins, density=True, alpha=0.6, label="test")
        ax.hist(ood, bins=bins, density=True, alpha=0.6, label="ood")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epistemic uncertainty")
        ax.legend(fontsize=7)
    _save(fig, path)


def selective_grid(entries, path) -> None:
    """entries: [(title, {uncertainty name: (coverage (N,), risk (N,))})]: accuracy against kept fraction."""
    fig, axes = _grid(len(entries))
    for ax, (title, curves) in zip(axes, entries):
        for name, (coverage, risk) in curves.items():
            ax.plot(coverage, 1 - risk, label=f"{name} (AURC {risk.mean():.3f})")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("fraction kept")
        ax.set_ylabel("accuracy")
        ax.legend(fontsize=7)
    _save(fig, path)
