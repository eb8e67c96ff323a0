"""`--set FIELD=VALUE`: the option every LUMA command (`luma`, `python -m luma_noise.baselines`) uses
to set a config field. Its own module, importing only argparse and json, so that the command line
and the baselines share it without importing each other."""

import argparse
import json


def parse_set(item: str) -> tuple:
    """`FIELD=VALUE` -> (field, value): VALUE as JSON (`3`, `true`, `["KeyboardNoise"]`, `null`),
    else the plain string (`--set luma_revision=v1.0`). The `--set` type of every LUMA command."""
    field, sep, text = item.partition("=")
    if not sep or not field:
        raise argparse.ArgumentTypeError(f"{item!r}: expected FIELD=VALUE, e.g. seed=7 or text_noises='[\"OCRNoise\"]'")
    try:
        return field, json.loads(text)
    except json.JSONDecodeError:
        return field, text
