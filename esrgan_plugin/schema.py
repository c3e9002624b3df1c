"""``python -m esrgan_plugin.schema [-o FILE]``: the JSON schema of option files, for editors.

Completion and inline errors in editors that read JSON schemas (VS Code's YAML extension and others); the
schema lists the registered classes' keywords (``config.schema``).
"""
from __future__ import annotations

import argparse
import json
from typing import Optional, Sequence

from esrgan_plugin.cli import run_main, say


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m esrgan_plugin.schema',
        description='Print the JSON schema of option files (for editor completion and inline errors), e.g. '
        'python -m esrgan_plugin.schema -o esrgan_options.schema.json')
    parser.add_argument('-o', '--output', help='write to this file instead of standard output')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    import esrgan_plugin
    esrgan_plugin.register()  # the schema lists the registered classes
    from esrgan_plugin import fileio
    from esrgan_plugin.config.schema import json_schema

    text = json.dumps(json_schema(), indent=1) + '\n'
    if args.output:
        fileio.save_text(text, args.output)
    else:
        say(text.rstrip('\n'))
    return 0


if __name__ == '__main__':
    run_main(main)
