"""`make clean` removes everything generated: whatever .gitignore ignores, it deletes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_make_clean_leaves_nothing_that_gitignore_ignores(tmp_path: Path) -> None:
    # Given a copy of the Makefile and .gitignore, and a file for each pattern .gitignore lists (and a nested cache)
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    shutil.copy(ROOT / ".gitignore", tmp_path / ".gitignore")
    patterns = [p.strip() for p in (ROOT / ".gitignore").read_text().splitlines() if p.strip() and p[0] != "#"]
    for pattern in [*patterns, "src/actions/__pycache__/", "tests/unit/__pycache__/"]:
        path = tmp_path / pattern.replace("*", "generated").rstrip("/")
        if pattern.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
            path = path / "generated.pyc"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("generated")
    git = ["git", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)  # noqa: S603 - git, on the test's own copy
    ignored = subprocess.run(  # noqa: S603
        [*git, "status", "--porcelain", "--ignored"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    assert ignored.count("!!") >= len(patterns)

    # When make clean runs
    done = subprocess.run(["make", "clean"], cwd=tmp_path, capture_output=True, text=True, check=False)  # noqa: S607

    # Then git sees nothing ignored left
    assert done.returncode == 0, done.stderr
    left = subprocess.run(  # noqa: S603
        [*git, "status", "--porcelain", "--ignored"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    assert [line for line in left.splitlines() if line.startswith("!!")] == []
