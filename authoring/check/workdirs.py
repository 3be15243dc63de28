"""Where the check runs a notebook: a working folder of its own, with the key of widget items.

Rule: no run of the check reads or writes the author's workbook folder as its working folder. Each
language version gets two working folders under the check's temporary folder: ``source/`` (the
source run and Voila) and ``student/`` (the student version), each holding links to the workbook's
files (``data/``, ``images/``, ...) and a copy of the notebook, never the author's own answers file.

Graded widget items keep their key in hidden test cells and read the trainee's answers from the
answers file (``atelier.widgets.grading``), so a source run "with solutions" needs the right
answers: the source folder gets them from the workbook's all-right answer set,
``answers/<id>.<lang>.right.json`` (docs/answer-sets.md), written as ``.atelier-answers.json``. The
student folder gets none, so every widget test must fail on the released notebook there.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from pathlib import Path

from atelier import workbook as wb
from atelier.widgets.store import ANSWERS_FILENAME
from atelier.workbook import Problem

#: The import that marks a test cell as grading widget answers.
GRADING_MODULE = "atelier.widgets.grading"
#: The name of the all-right answer set, after the workbook id and language.
RIGHT = "right"


def grades_widgets(nb) -> bool:
    """Whether a test cell of ``nb`` grades answers saved by widgets."""
    return any(wb.is_test(cell) and GRADING_MODULE in cell.source for cell in nb.cells)


def right_answer_set(path: Path) -> Path:
    """``answers/<id>.<lang>.right.json`` beside the notebook ``path``."""
    workbook, _, lang = Path(path).stem.rpartition(".")
    return Path(path).parent / "answers" / f"{workbook}.{lang}.{RIGHT}.json"


def key_answers(path: Path) -> tuple[dict | None, Problem | None]:
    """The widget answers of the all-right answer set of ``path``: ``(answers, problem)``.

    ``(None, None)`` when the notebook has no such set; a problem when it cannot be used.
    """
    answer_set = right_answer_set(path)
    if not answer_set.is_file():
        return None, None
    try:
        data = json.loads(answer_set.read_text("utf-8"))
        widgets = data["widgets"]
        if data.get("format") != "atelier-answer-set" or not isinstance(widgets, dict):
            raise ValueError('not an "atelier-answer-set" with a "widgets" object')
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, Problem(
            str(answer_set),
            f"cannot be read as an answer set ({exc})",
            "fix it as docs/answer-sets.md describes",
            code="answer-set",
        )
    return widgets, None


def check_key_answers(nb, path: Path, options) -> list[Problem]:
    """A notebook whose tests grade widget answers has an all-right answer set to run with."""
    if not grades_widgets(nb):
        return []
    answers, problem = key_answers(path)
    if problem is not None:
        return [problem]
    if answers is None:
        rel = right_answer_set(path).relative_to(path.parent)
        return [
            Problem(
                str(path),
                f"tests grade widget answers, but there is no {rel}: the check runs the source "
                "with its widget answers",
                "write the all-right answer set (docs/answer-sets.md)",
                code="answer-set",
            )
        ]
    return []


def working_folder(base: str | Path, path: Path, kind: str) -> Path:
    """The working folder of the ``kind`` (``source`` or ``student``) runs of notebook ``path``.

    Made on first use: links to every visible entry of the workbook folder but its notebooks, a
    copy of this notebook (Voila renders the file), and for ``source`` the key answers file.
    """
    lang = Path(path).stem.rpartition(".")[2]
    # The folder's name, made unique: two roots checked at once may hold folders of one name.
    where = hashlib.sha256(str(path.parent.resolve()).encode()).hexdigest()[:8]
    folder = Path(base) / "folders" / kind / lang / f"{path.parent.name}-{where}"
    if folder.is_dir():
        return folder
    folder.mkdir(parents=True)
    for entry in sorted(path.parent.iterdir()):
        if entry.name.startswith(".") or entry.suffix == ".ipynb":
            continue
        (folder / entry.name).symlink_to(entry.resolve())
    shutil.copyfile(path, folder / path.name)
    if kind == "source":
        answers, _problem = key_answers(path)  # a bad set is reported by the static checks
        if answers:
            entries = {
                widget: {"value": value, "kind": "answer-set", "saved": "2026-01-01T00:00:00Z"}
                for widget, value in answers.items()
            }
            document = {"format": "atelier-answers", "version": 1, "answers": entries}
            (folder / ANSWERS_FILENAME).write_text(json.dumps(document), "utf-8")
    return folder


def check_variants(nb, path: Path, options) -> list[Problem]:
    """Items drawn per trainee: declared as literals, graded with the same declaration.

    A hidden test that grades an item declaring variants without them (or with others) would grade
    every trainee against the default numbers, or against numbers nobody was shown; an answer
    set names the variant it was written for, which must be the default one (the check, Binder
    and public apps show the default). ``atelier.variants`` says how parameters are drawn.
    """
    from atelier.variants import VariantError, check_declaration, draw
    from atelier.widgets.items import NOT_LITERAL, code_variants, graded_variants

    code = [cell.source for cell in nb.cells if cell.cell_type == "code"]
    declared = code_variants(code)
    problems = []

    def problem(what: str, fix: str) -> None:
        problems.append(Problem(str(path), what, fix, code="variants"))

    for item, declaration in declared.items():
        if declaration is NOT_LITERAL:
            problem(f"item {item}: variants= is not a literal", "write the mapping in the call")
            continue
        try:
            check_declaration(declaration, f"item {item}")
        except VariantError as error:
            problem(str(error), "fix the declaration (docs/widgets.md, Variants)")
    for index, cell in enumerate(nb.cells):
        if not wb.is_test(cell):
            continue
        for item, given in graded_variants(cell.source).items():
            if item in declared and given != declared[item]:
                problem(
                    f"cell {index}: the test of {item} grades with variants={given!r}, but its "
                    "widget declares others",
                    "give the test the widget's own variants= (each trainee is graded on their "
                    "numbers)",
                )
            elif item not in declared and given is not None:
                problem(f"cell {index}: {item} has variants in its test only", "declare them")
    answer_set = right_answer_set(path)
    stated = None
    # No set, or one check_key_answers reports as unreadable: nothing to compare.
    with contextlib.suppress(OSError, ValueError, AttributeError):
        stated = json.loads(answer_set.read_text("utf-8")).get("variants") or {}
    for item, declaration in declared.items():
        if declaration is NOT_LITERAL or not isinstance(stated, dict):
            continue
        try:
            default = draw(item, declaration, "")
        except VariantError:
            continue
        if stated.get(item) != default:
            problem(
                f"{answer_set.name}: variants of {item} is {stated.get(item)!r}, not the default "
                f"variant {default!r} the check runs with",
                'write "variants": {"' + item + '": ' + json.dumps(default) + "} in the set",
            )
    return problems
