"""
The README's C{twistsock get} option table and C{twistsock get --help} list the same
options, so that neither can gain an option the other does not document.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from twistsock._cli import _parser

README = Path(__file__).resolve().parent.parent / "README.md"

_OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][-A-Za-z]*)")


def readme_get_options(text: str) -> dict[str, str]:
    """
    The options named in the first cell of each row of the option table under the
    C{### `twistsock get`} heading, each mapped to its whole row.
    """
    section = text.split("### `twistsock get`", 1)[1].split("\n### ", 1)[0]
    options: dict[str, str] = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        first_cell = line.split("|")[1]
        for quoted in re.findall(r"`([^`]*)`", first_cell):
            for option in _OPTION.findall(quoted):
                options[option] = line
    return options


def help_get_options() -> set[str]:
    """Every option string of the C{get} subcommand's parser (C{-h}/C{--help} aside)."""
    parser = _parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    get = subparsers.choices["get"]
    return {
        option
        for action in get._actions
        if not isinstance(action, argparse._HelpAction)
        for option in action.option_strings
    }


class GetOptionTableTests(SynchronousTestCase):
    """The README's table of C{get} options against the command's own parser."""

    def test_every_option_documented(self) -> None:
        """Each option that C{get --help} shows has a row in the README's table."""
        documented = readme_get_options(README.read_text(encoding="utf-8"))
        self.assertEqual(sorted(help_get_options() - documented.keys()), [])

    def test_no_option_only_in_readme(self) -> None:
        """Each option in the README's table exists in the command."""
        documented = readme_get_options(README.read_text(encoding="utf-8"))
        self.assertEqual(sorted(documented.keys() - help_get_options()), [])

    def test_table_parsing(self) -> None:
        """
        The table reader finds every option of a row, short and long, and none in the
        meaning column; a check of the checker, so that an empty result cannot pass.
        """
        text = (
            "### `twistsock get`\n\n| option | meaning |\n|---|---|\n"
            "| `-i`, `--include` | write the `--raw` bytes |\n"
            "| `-H 'Name: value'` | header |\n### `twistsock probe`\n| `-t` | x |\n"
        )
        self.assertEqual(sorted(readme_get_options(text)), ["--include", "-H", "-i"])
