"""The project's promises about itself: the README's commands, a light import."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Set up.*?```(?:bash|sh)?\n(.*?)```", text, re.S)
    assert block, "README.md needs a '## Set up' section with a shell block"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_readme_gives_two_setup_commands_main_job_then_tests():
    commands = _readme_commands()
    assert len(commands) == 2, commands
    assert "losslab train" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command():
    test_command = _readme_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text()
    steps = [s.strip() for s in test_command.split("&&")]
    ci_lines = [line.strip() for line in ci.splitlines()]
    for step in steps:
        assert any(step in line for line in ci_lines), f"{step!r} not run by .ci/run"


def test_import_losslab_stays_light():
    code = (
        "import sys, losslab; heavy = [m for m in ('torch', 'jax', 'matplotlib', 'sklearn', "
        "'tqdm', 'scipy') if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import losslab pulled in: {out.stdout.strip()}"


def test_readme_lists_every_catalog_loss():
    import losslab

    text = (ROOT / "README.md").read_text()
    missing = [n for n in losslab.available() if f"| `{n}` |" not in text]
    assert not missing, f"README's catalog table lacks {missing}"


def test_readme_training_engine_example_runs():
    """The README's engine example, as written, with the numbers its comments give."""
    import pytest

    pytest.importorskip("sklearn")
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Training engine.*?```python\n(.*?)```", text, re.S)
    assert block, "README.md's Training engine section needs a python example"
    scope: dict = {}
    exec(compile(block.group(1), "README.md", "exec"), scope)
    assert 3e-3 < scope["found"].suggestion < 2e-2 and not scope["found"].at_edge
    assert scope["trainer"].evaluate(scope["X_test"], scope["y_test"])["accuracy"] > 0.95


def test_readme_catalog_example_runs():
    """The README's catalog example, line by line; the line its comment says raises, raises."""
    import pytest

    text = (ROOT / "README.md").read_text()
    block = re.search(r"## The catalog.*?```python\n(.*?)```", text, re.S)
    assert block, "README.md's catalog section needs a python example"
    scope: dict = {}
    for line in block.group(1).splitlines():
        if "# ValueError" in line:
            with pytest.raises(ValueError, match=line.split("# ValueError: ")[1]):
                exec(line, scope)
        else:
            exec(line, scope)
    assert scope["hess"].shape == scope["logits"].shape
    assert scope["hv"].dtype == scope["logits"].dtype
