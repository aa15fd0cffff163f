"""The README and docs/ tell a newcomer true things: every link leads to a file, every template parameter they
name exists (the README once named a `WorkFunction` parameter that does not), and every make target they name
is in the Makefile."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def template_parameters(path: str = "template.yaml") -> set[str]:
    """The names under a template's top-level Parameters."""
    text = (ROOT / path).read_text()
    section = re.search(r"^Parameters:\n(.*?)^\S", text, flags=re.MULTILINE | re.DOTALL)
    assert section is not None
    return set(re.findall(r"^  (\w+):$", section.group(1), flags=re.MULTILINE))


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), flags=re.MULTILINE))


def unknown_parameters(text: str) -> set[str]:
    """Template parameters a document names that its template does not have: in OVERRIDES="...", in a command's
    --parameter-overrides (for the template its --template-file names, template.yaml by default), and as "the
    template's `X` parameter"."""
    named = set(re.findall(r"template's `(\w+)` parameter", text))
    for overrides in re.findall(r'OVERRIDES="([^"]*)"', text):
        named |= {pair.split("=", 1)[0] for pair in overrides.split()}
    unknown = named - template_parameters()
    for command in text.replace("\\\n", " ").splitlines():
        for overrides in re.findall(r"--parameter-overrides ((?:\w+=\S+ ?)+)", command):
            template = re.search(r"--template-file (\S+)", command)
            names = {pair.split("=", 1)[0] for pair in overrides.split()}
            unknown |= names - template_parameters(template.group(1) if template else "template.yaml")
    return unknown


def parameter_table(text: str) -> set[str]:
    """The first column of every table whose header's first cell is `parameter`."""
    names: set[str] = set()
    for table in re.findall(r"^\| parameter \|.*?\n((?:\|.*\n)+)", text, flags=re.MULTILINE):
        for row in table.splitlines()[1:]:
            names |= set(re.findall(r"`(\w+)`", row.split("|")[1]))
    return names


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_relative_link_leads_to_a_file(document: Path) -> None:
    text = re.sub(r"^\s*```.*?^\s*```", "", document.read_text(), flags=re.MULTILINE | re.DOTALL)  # code is not links
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    relative = [link for link in links if not re.match(r"^[a-z]+:", link)]
    missing = [link for link in relative if not (document.parent / link).exists()]
    assert missing == []


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_template_parameter_named_exists(document: Path) -> None:
    text = document.read_text()
    assert unknown_parameters(text) | (parameter_table(text) - template_parameters()) == set()


def test_the_reference_names_every_template_parameter_in_its_table() -> None:
    assert parameter_table((ROOT / "docs" / "reference.md").read_text()) == template_parameters()


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_link_to_a_heading_leads_to_one(document: Path) -> None:
    text = document.read_text()
    broken = []
    for target, fragment in re.findall(r"\]\(([^)#\s]*)#([^)\s]+)\)", text):
        if re.match(r"^[a-z]+:", target):
            continue
        linked = (document.parent / target) if target else document
        headings = {anchor(h) for h in re.findall(r"^#+ (.+)$", linked.read_text(), flags=re.MULTILINE)}
        if fragment not in headings:
            broken.append(f"{target}#{fragment}")
    assert broken == []


def test_the_readme_is_a_short_path_with_a_table_of_contents() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.encode()) <= 15 * 1024
    contents = text.split("## Contents", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"\(#([^)]+)\)", contents)
    headings = [anchor(h) for h in re.findall(r"^## (.+)$", text, flags=re.MULTILINE) if h != "Contents"]
    assert listed == headings


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_make_target_named_exists(document: Path) -> None:
    named = set(re.findall(r"`make ([a-z][a-z-]*)", document.read_text()))
    named |= set(re.findall(r"^make ([a-z][a-z-]*)", document.read_text(), flags=re.MULTILINE))
    assert named - make_targets() == set()


def test_the_checks_catch_what_the_readme_once_said() -> None:
    said = "Then point the work function at it: the template's `WorkFunction` parameter (env `WORK_FUNCTION`)"
    assert unknown_parameters(said) == {"WorkFunction"}
    assert unknown_parameters('make invoke OVERRIDES="LogLevel=DEBUG WorkFunction=x:run"') == {"WorkFunction"}
    assert unknown_parameters("sam deploy --parameter-overrides ActionType=Custom/Build/MyTool/1") == {"ActionType"}
    sample = "aws cloudformation deploy --template-file samples/pipeline.yaml \\\n  --parameter-overrides ActionType=x"
    assert unknown_parameters(sample) == set()
