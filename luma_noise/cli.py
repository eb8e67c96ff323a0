"""`luma`: LUMA's command line.

    luma configs                                   named configs, every field with default and accepted values
    luma prepare CONFIG [--set FIELD=VALUE ...] [--mirror M] [--num-proc N] [--cache-dir D]
    luma export CONFIG [--set ...] --output-dir OUT [--name NAME] [--force] [--push-to-hub USER/REPO]
    luma baselines train|sweep|report ...          the baselines' commands (python -m luma_noise.baselines)
    luma demo [--output-dir DIR]                   the whole pipeline offline on synthetic data, in a few minutes

Exit status 0 on success, 1 when the work failed, 2 for a bad command line or config field.
Only argparse and json are imported at start: `datasets`, the builder and the baselines
(torch) are imported by the commands that need them.
"""

import argparse
import json
import sys

from .set_option import parse_set  # noqa: F401  (also imported from here)

USAGE_ERROR = 2


def _add_variant_arguments(parser) -> None:
    parser.add_argument("config", metavar="CONFIG", help="a named config (`luma configs` lists them and every field)")
    parser.add_argument("--set", dest="fields", action="append", type=parse_set, default=[], metavar="FIELD=VALUE",
                        help="override a config field (repeatable); VALUE as JSON, else a string")
    parser.add_argument("--mirror", help="local folder or http(s) URL of a LUMA mirror (the `mirror` field)")
    parser.add_argument("--num-proc", type=int, help="processes generating the examples")
    parser.add_argument("--cache-dir", help="datasets cache folder (default: the datasets default)")
    parser.add_argument("--script", help="the loading script luma.py to prepare through on datasets < 4 "
                        "(default: the one beside the package, in a checkout)")


def _field_epilog() -> str:
    """The fields for `--help`, from the config class (imports the builder: only when asked for help)."""
    from .options import NAMED_CONFIGS
    from .variant import field_help

    names = ", ".join(NAMED_CONFIGS)
    fields = "\n".join(f"  {name} (default {json.dumps(default, default=list)}): {accepted}"
                       for name, default, accepted, *_ in field_help())
    return f"configs: {names}\n\nfields (--set FIELD=VALUE):\n{fields}"


class _FieldHelp(argparse.Action):
    """`-h/--help` that lists the config fields (built only when help is asked for)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        parser.epilog = _field_epilog()
        parser.print_help()
        parser.exit()


def build_parser(baselines: bool = False) -> argparse.ArgumentParser:
    """The `luma` parser; `baselines=True` mounts the baselines' subcommands (imports torch)."""
    parser = argparse.ArgumentParser(prog="luma", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("configs", help="list the named configs and every field with its default and accepted values")
    for name, text in (("prepare", "build and cache a config as load_dataset would, then summarise it"),
                       ("export", "build a config and write it as Parquet with a dataset card")):
        sub = commands.add_parser(name, help=text, description=text, add_help=False,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.add_argument("-h", "--help", action=_FieldHelp, help="show this help, with every config field, and exit")
        _add_variant_arguments(sub)
        sub.add_argument("--diversity-features", choices=("auto", "skip"), default="auto",
                         help="summary of a diversity draw: mean distance to the class centre from the feature "
                              "cache the draw filled (auto), or skip it")
    export = commands.choices["export"]
    export.add_argument("--output-dir", required=True, help="export folder; holds one subfolder per config")
    export.add_argument("--name", help="exported config name (default: CONFIG, plus -<hash> of the --set fields); "
                        "one folder name: an existing OUT/NAME is replaced only if it is an earlier luma export of NAME")
    export.add_argument("--force", action="store_true", help="replace the text of an OUT/README.md that luma export "
                        "did not write (its YAML header is kept and extended); without it such a README is refused")
    export.add_argument("--max-shard-size", default=None, help="largest Parquet shard (default: datasets' 500MB)")
    export.add_argument("--push-to-hub", metavar="USER/REPO", help="also upload through datasets' push_to_hub")
    export.add_argument("--token", help="Hub token for --push-to-hub (default: the saved login)")
    sub = commands.add_parser("baselines", help="train, sweep and report the uncertainty baselines",
                              description="The baselines' commands, as `python -m luma_noise.baselines`.")
    if baselines:
        _mount_baselines(sub)
    from .demo import add_parser as add_demo  # a light import: the demo's steps import what they need

    add_demo(commands)
    return parser


def _mount_baselines(parser) -> None:
    """Mount `luma_noise.baselines`' subcommands (train, sweep, report) under `luma baselines`."""
    try:
        from .baselines.__main__ import mount
    except ImportError as err:  # e.g. a dependency of the baselines is missing: say which
        message = f"the baselines commands are not available: {err}"
        parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        parser.set_defaults(func=lambda args: _fail(message))
        return
    mount(parser.add_subparsers(dest="baselines_command", required=True, metavar="COMMAND"))


def main(argv=None) -> int:
    """Run the `luma` command; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(baselines=bool(argv) and argv[0] == "baselines")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else USAGE_ERROR
    if args.command == "configs":
        return _configs()
    if args.command == "baselines":
        return args.func(args)
    if args.command == "demo":
        from .demo import run

        return run(args)
    return _variant_command(args)


def _fail(message: str, status: int = 1) -> int:
    print(f"luma: error: {message}", file=sys.stderr)
    return status


def _configs() -> int:
    from .options import NAMED_CONFIGS
    from .variant import field_help

    print("named configs (the fields each sets; every other field keeps its default):")
    for name, fields in NAMED_CONFIGS.items():
        print(f"  {name}: {json.dumps(fields) if fields else '(defaults)'}")
    print("\nfields (--set FIELD=VALUE, VALUE as JSON; kind: content fields make another variant, provenance "
          "fields say which upstream release or model, location fields where things are read or cached):")
    for name, default, accepted, description, kind in field_help():
        print(f"  {name}\n      default: {json.dumps(default, default=list)}\n      accepts: {accepted}\n"
              f"      kind: {kind}\n      {description}")
    return 0


def _variant_command(args) -> int:
    from .safe_files import BadInput
    from .variant import Variant

    fields = dict(args.fields)
    if args.mirror is not None:
        fields["mirror"] = args.mirror
    variant = Variant(args.config, fields)
    problems = variant.errors()  # every bad field, before any download
    problems = ["bad config:", *problems] if problems else []
    if args.command == "export":  # a name, folder or README not ours to replace, before any build
        from .export import check_export

        name = args.name if args.name is not None or problems else variant.export_name()
        refused = check_export(args.output_dir, name, args.force) if name is not None else []
        problems += ["cannot export:", *refused] if refused else []
    if problems:
        return _fail("\n  ".join(problems).replace("\n  cannot export:", "\ncannot export:"), USAGE_ERROR)
    if args.num_proc is not None and args.num_proc < 1:
        return _fail(f"--num-proc={args.num_proc}: expected an integer >= 1", USAGE_ERROR)
    if args.command == "export" and args.push_to_hub and args.push_to_hub.count("/") != 1:
        return _fail(f"--push-to-hub={args.push_to_hub!r}: expected USER/REPO", USAGE_ERROR)
    try:
        built, resolved = _prepare(args, variant)
        if args.command == "export":
            _export(args, variant, built, resolved)
    except BadInput as err:  # refused input found while exporting (e.g. a folder changed since the check)
        return _fail(str(err), USAGE_ERROR)
    except (ValueError, FileNotFoundError, OSError, ImportError) as err:  # named, without a traceback
        return _fail(f"{type(err).__name__}: {err}")
    if args.command == "prepare":
        print(_prepared_line(args, variant, built))
    return 0


def _prepared_line(args, variant, built) -> str:
    """The closing line of `luma prepare`: what is ready and the call that loads it from the cache."""
    from .variant import script_path, uses_script

    keywords = [repr(variant.config), *(f"{k}={v!r}" for k, v in variant.fields.items())]
    if args.cache_dir:
        keywords.append(f"cache_dir={args.cache_dir!r}")
    script = args.script or script_path()
    call = (f"datasets.load_dataset({script!r}, {', '.join(keywords)}, trust_remote_code=True)" if uses_script(script)
            else f"luma_noise.load({', '.join(keywords)})")  # the route `prepare` took: the call that finds its cache
    sizes = ", ".join(f"{split} {len(ds):,}" for split, ds in built.items())
    return f"done: {variant.config} is ready, {sum(len(ds) for ds in built.values()):,} examples ({sizes}); load it with {call}"


def _prepare(args, variant):
    """Build (or find cached) the variant, print where it is and its summary from the built data."""
    import os
    import time

    from .variants import deep_features
    from .variant_summary import format_summary, summarize
    from .variant import prepare, script_path, uses_script

    script = args.script or script_path()
    route = f"load_dataset on {script}" if uses_script(script) else "luma_noise.load (the packaged builder)"
    print(f"luma {args.command}: {variant.config} {json.dumps(variant.fields)} through {route}", file=sys.stderr)
    start = time.perf_counter()
    built = prepare(variant, num_proc=args.num_proc, cache_dir=args.cache_dir, script=script)
    resolved = variant.resolved()
    files = [f["filename"] for ds in built.values() for f in ds.cache_files]
    print(f"prepared in {time.perf_counter() - start:.1f} s; cache: {os.path.dirname(files[0]) if files else 'in memory'}")
    feature_cache = resolved.feature_cache_dir or deep_features.default_cache_dir(args.cache_dir)
    summary = summarize(built, resolved if args.diversity_features == "auto" else None, feature_cache)
    print(format_summary(summary))
    return built, resolved


def _export(args, variant, built, resolved) -> None:
    from .export import provenance, push, write_config

    name = args.name or variant.export_name()
    record = provenance(variant, name, resolved, {split: len(ds) for split, ds in built.items()})
    shards = write_config(built, args.output_dir, name, record, max_shard_size=args.max_shard_size, force=args.force)
    count = sum(len(files) for files in shards.values())
    croissant = _croissant(args.output_dir)
    print(f"exported {name}: {count} Parquet shard(s) under {args.output_dir}/{name}/, described in its README.md{croissant}; "
          f"load with datasets.load_dataset({args.output_dir!r}, {name!r})")
    if args.push_to_hub:
        push(built, args.push_to_hub, name, args.output_dir, token=args.token, max_shard_size=args.max_shard_size)
        if croissant:
            from .croissant import upload_croissant

            upload_croissant(args.output_dir, args.push_to_hub, token=args.token)
        print(f"pushed {name} to the Hub dataset {args.push_to_hub}")


def _croissant(out_dir) -> str:
    """Rewrite out_dir/croissant.json from every config there (unless a croissant.json is there that
    `luma export` did not write: it is left alone); returns how the closing line names it."""
    from .croissant import write_croissant

    path = write_croissant(out_dir)
    if path is None:
        print(f"luma export: {out_dir}/croissant.json was not written by luma export: left as it is", file=sys.stderr)
        return ""
    return " and croissant.json"


if __name__ == "__main__":
    sys.exit(main())
