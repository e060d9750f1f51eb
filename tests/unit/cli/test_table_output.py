"""The CLI's shared table printer: fitted to a terminal, never cut when piped (a script or grep reads every value)."""

from __future__ import annotations

import click
from click.testing import CliRunner

from flashml.cli.output import print_table, table_lines

ROW = ["25", "cli-made-limited", "2/s burst 2, 0/50 today, weight 3"]


def test_a_narrow_width_cuts_the_widest_column_with_an_ellipsis():
    lines = table_lines(["id", "name", "limits"], [ROW], width=40)
    assert all(len(line) <= 40 for line in lines)
    assert lines[1].endswith("\u2026") and "0/50 today" not in lines[1]


def test_no_width_keeps_every_value_whole():
    lines = table_lines(["id", "name", "limits"], [ROW], width=None)
    assert lines[0].split() == ["ID", "NAME", "LIMITS"]
    assert lines[1].endswith("2/s burst 2, 0/50 today, weight 3")


def test_piped_output_is_never_cut():
    @click.command()
    def show() -> None:
        print_table(["id", "name", "limits"], [[*ROW[:2], ROW[2] * 10]])

    out = CliRunner().invoke(show).output  # CliRunner's stdout is not a terminal, as in a pipe
    assert ROW[2] * 10 in out and "\u2026" not in out
