"""MkDocs hooks (registered under ``hooks:`` in mkdocs.yml).

``<!-- lstmlab-cli -->`` in a page is replaced by the reference of the ``lstmlab`` command,
generated at build time from its argparse parser (:func:`lstmlab.cli.main.build_parser`), so
the page always says what the installed command accepts.
"""

from __future__ import annotations

import argparse
import os

MARKER = "<!-- lstmlab-cli -->"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            return {name: (helps.get(name, ""), p) for name, p in action.choices.items()}
    return {}


def cli_reference() -> str:
    os.environ["COLUMNS"] = "96"  # argparse wraps help at the terminal's width
    from lstmlab.cli.main import build_parser

    parser = build_parser()
    parts = ["## `lstmlab`", "", "```text", parser.format_help().rstrip(), "```", ""]
    for name, (help, sub) in _subparsers(parser).items():
        parts += [f"## `lstmlab {name}`", "", f"{help[:1].upper()}{help[1:]}.", ""]
        parts += ["```text", sub.format_help().rstrip(), "```", ""]
    return "\n".join(parts)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, cli_reference())
    return markdown
