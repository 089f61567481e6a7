"""``alphacut models ...`` through argparse, as ``alphacut.cli`` wires it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from alphacut.cli import models as cli_models
from alphacut.models import catalog
from support.models import home, registered, register, tiny_spec  # noqa: F401


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="alphacut")
    cli_models.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_list_json_has_every_model_with_licence(home, capsys) -> None:  # noqa: F811
    assert run("models", "list", "--json") == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(catalog.CATALOG)
    assert rows["rmbg-1.4"]["commercial_use"] is False
    assert rows["isnet"]["expected_size"] == 88_188_479 and rows["isnet"]["installed"] is False


def test_list_table(home, capsys) -> None:  # noqa: F811
    assert run("models", "list") == 0
    out = capsys.readouterr().out
    assert "rmbg-2.0" in out and "CC BY-NC 4.0" in out and "commercial" in out


def test_errors_are_one_line_with_exit_code(home, capsys) -> None:  # noqa: F811
    assert run("models", "pull", "rmbg-1.4") == 4
    err = capsys.readouterr().err
    assert err.startswith("alphacut: error: ") and "--accept-license" in err
    assert run("models", "--offline", "pull", "u2netp") == 4
    assert "offline" in capsys.readouterr().err
    assert run("models", "path", "u2netp") == 4
    assert "not installed" in capsys.readouterr().err
    assert run("models", "pull", "nope") == 4
    assert "known models" in capsys.readouterr().err
    assert run("models", "rm", "u2netp") == 4


def test_import_path_verify_export_rm(home, tmp_path: Path, capsys, registered) -> None:  # noqa: F811
    from support.models import build_tiny_onnx

    register(registered, tiny_spec())
    f = tmp_path / "tiny.onnx"
    f.write_bytes(build_tiny_onnx())
    assert run("models", "import", str(f), "--name", "test-tiny") == 0
    installed = Path(capsys.readouterr().out.strip())
    assert run("models", "path", "test-tiny") == 0
    assert Path(capsys.readouterr().out.strip()) == installed
    assert run("models", "verify") == 0
    assert "test-tiny: ok" in capsys.readouterr().out
    assert run("models", "export", "test-tiny", str(tmp_path / "copy.onnx")) == 0
    assert (tmp_path / "copy.onnx").read_bytes() == f.read_bytes()
    installed.write_bytes(b"broken")
    assert run("models", "verify", "test-tiny") == 4
    assert run("models", "rm", "test-tiny") == 0
    assert not installed.exists()
