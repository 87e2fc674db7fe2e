"""The README's quick start: exactly two commands, and CI runs the README's test command verbatim."""

from __future__ import annotations

import re

from conftest import REPO


def _quick_start_commands():
    text = (REPO / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return [line for block in blocks for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_quick_start_has_exactly_two_commands():
    commands = _quick_start_commands()
    assert len(commands) == 2
    main, tests = commands
    assert "yolo train model=yolov8n-efficientrep.yaml data=shapes.yaml" in main
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command():
    test_command = _quick_start_commands()[1]
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert test_command in ci
