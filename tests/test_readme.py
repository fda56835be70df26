"""The README's two fresh-machine commands stay true to .ci/run and the CLI."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_test_command_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    commands = re.findall(r"```bash\n(python3 -m venv .*?)\n```", readme)
    test_command = next(c for c in commands if "pytest" in c)
    assert test_command.endswith("python -m pytest -q")
    assert "python -m pytest -q" in ci.splitlines()
    assert "pip install torch==2.13.0" in test_command and "torch==2.13.0" in ci
    assert 'pip install -e ".[dev]"' in test_command and '-e ".[dev]"' in ci


def test_readme_quickstart_command_runs_the_cli_quickstart():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```bash\n(python3 -m venv .*?)\n```", readme)
    assert any(c.endswith("metaenvs quickstart") for c in commands)


def test_readme_api_tour_runs(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## A tour of the API\n\n```python\n(.*?)```", readme, re.S).group(1)
    assert "meta_steps=1000" in block
    monkeypatch.chdir(tmp_path)  # the tour writes runs/reptile
    namespace: dict = {}
    exec(compile(block.replace("meta_steps=1000", "meta_steps=3"), "README.md", "exec"), namespace)
    assert (tmp_path / "runs" / "reptile" / "init.safetensors").is_file()
    assert namespace["report"].summary()["final"]["n_runs"] == 300


def test_readme_laptop_sized_shell_examples_run_as_written(tmp_path, monkeypatch):
    import shlex

    from metaenvs.cli import main

    readme = (ROOT / "README.md").read_text()
    block = readme.split("# A couple of minutes on a laptop", 1)[1].split("# The official protocol", 1)[0]
    lines = [line for line in block.splitlines()[1:] if line.startswith("metaenvs ")]
    assert len(lines) == 2
    monkeypatch.chdir(tmp_path)
    for line in lines:
        assert main([*shlex.split(line)[1:], "--no-progress"]) == 0, line
