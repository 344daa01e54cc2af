"""Projects' signing keys through the `sipline` command, as an operator uses it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.sipline_process import Sipline, cli

pytestmark = pytest.mark.integration


def _listed(data_dir: Path) -> dict[str, str]:
    result = cli("projects", "list", "--json", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    return {p["id"]: p["signing_key"] for p in json.loads(result.stdout)}


def test_a_created_project_shows_its_signing_key_and_the_list_shows_the_same(tmp_path: Path) -> None:
    made = cli("projects", "create", "--name", "Acme", "--json", data_dir=tmp_path)
    assert made.returncode == 0, made.stderr
    project = json.loads(made.stdout)
    assert project["signing_key"].startswith("PSK_")
    assert _listed(tmp_path) == {project["id"]: project["signing_key"]}

    text = cli("projects", "list", data_dir=tmp_path).stdout
    assert project["id"] in text and project["signing_key"] in text
    other = cli("projects", "create", "--name", "Other", data_dir=tmp_path)
    assert other.returncode == 0 and "PSK_" in other.stdout
    assert len(set(_listed(tmp_path).values())) == 2


def test_rotate_signing_key_prints_the_new_key_and_the_old_one_is_gone(tmp_path: Path) -> None:
    project = json.loads(cli("projects", "create", "--name", "Acme", "--json", data_dir=tmp_path).stdout)
    rotated = cli("projects", "rotate-signing-key", project["id"], data_dir=tmp_path)
    assert rotated.returncode == 0, rotated.stderr
    new_key = rotated.stdout.strip()
    assert new_key.startswith("PSK_") and new_key != project["signing_key"]
    assert _listed(tmp_path)[project["id"]] == new_key

    as_json = cli("projects", "rotate-signing-key", project["id"], "--json", data_dir=tmp_path)
    shown = json.loads(as_json.stdout)
    assert shown["id"] == project["id"] and shown["signing_key"] not in (new_key, project["signing_key"])
    assert _listed(tmp_path)[project["id"]] == shown["signing_key"]


def test_rotating_an_unknown_project_exits_2_with_one_line(tmp_path: Path) -> None:
    cli("migrate", data_dir=tmp_path)
    result = cli("projects", "rotate-signing-key", "no-such-project", data_dir=tmp_path)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no project" in lines[0]


def test_serve_never_prints_or_logs_a_signing_key(tmp_path: Path) -> None:
    with Sipline(tmp_path / "node", args=["--no-sip"]) as node:
        pass
    [key] = _listed(node.data_dir).values()
    assert key not in "".join(node.lines)
    assert key not in (node.data_dir / "stderr.log").read_text()
