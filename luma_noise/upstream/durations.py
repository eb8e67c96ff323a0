"""Durations as people read them in progress messages and estimates."""


def readable(seconds: float) -> str:
    """'45 s', '12 min' or '3.4 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
