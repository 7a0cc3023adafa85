"""The CLI teaches: every command has help, and bad input gives a clear error."""

from __future__ import annotations

import pytest

from lab.cli import build_parser, main

COMMANDS = ["up", "down", "status", "exec", "console", "clean", "doctor", "image", "demo",
            "capture"]


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command in out
    assert "a first session" in out


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: lanalab" in capsys.readouterr().out


def test_unknown_command_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["frobnicate"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_exec_without_a_command_explains(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["exec", "vm1"]) == 1
    err = capsys.readouterr().err
    assert "no command given" in err and "what to do" in err
