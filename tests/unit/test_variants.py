"""Per-trainee variants: the secret, the seeds, the draw, the widgets and the hidden tests."""

from __future__ import annotations

import os
import stat
from collections import Counter

import nbformat
import pytest
from harness import WORKBOOKS

from atelier import variants
from atelier.widgets import grading
from atelier.widgets.assessment import MultipleChoice, NumericAnswer
from atelier.widgets.store import AnswerStore

pytestmark = pytest.mark.unit

DATA = {"minutes": [90, 60, 120], "rate": [{"up": 1000, "down": 600}, {"up": 600, "down": 600}]}


def megabytes(p):
    """The hidden test's formula for DATA: (up + down) kbps x seconds / 8,000."""
    return (p["up"] + p["down"]) * p["minutes"] * 60 / 8000


@pytest.fixture(autouse=True)
def no_seed(monkeypatch):
    """Every test starts with no seed: none in the environment, none pinned."""
    monkeypatch.delenv(variants.SEED_VARIABLE, raising=False)
    monkeypatch.setattr(variants, "_pinned", None)


def seed_of(username: str, cohort: str = "spring", secret: bytes = b"s" * 32) -> str:
    return variants.trainee_seed(variants.cohort_key(secret, cohort), username)


def test_the_draw_is_stable_and_differs_across_trainees_items_and_cohorts():
    """Same trainee, item and cohort: same numbers; another trainee, item or cohort: others."""
    alice = seed_of("alice")
    assert seed_of("alice") == alice and len(alice) == 64
    assert variants.draw("w2-data", DATA, alice) == variants.draw("w2-data", DATA, alice)
    seeds = [seed_of(f"t{n}") for n in range(40)]
    assert len({tuple(variants.draw("w2-data", DATA, s).items()) for s in seeds}) == 6
    # Items of one trainee are drawn independently of each other.
    pairs = {
        (tuple(variants.draw("a", DATA, s).items()), tuple(variants.draw("b", DATA, s).items()))
        for s in seeds
    }
    assert len(pairs) > 6
    assert seed_of("alice", "autumn") != alice
    assert seed_of("alice", secret=b"t" * 32) != alice


def test_every_combination_is_about_equally_likely():
    """Over 6,000 trainees, is each of the 6 combinations drawn 1,000 times give or take 12%?"""
    counts = Counter(
        tuple(variants.draw("w2-data", DATA, seed_of(f"t{n}")).values()) for n in range(6000)
    )
    assert len(counts) == 6
    assert all(880 <= count <= 1120 for count in counts.values()), counts


def test_no_seed_is_the_default_variant_and_a_malformed_seed_is_none():
    """Without a seed (a public app, atelier check), is every parameter its first value?"""
    default = {"minutes": 90, "up": 1000, "down": 600}
    assert variants.draw("w2-data", DATA) == default
    os.environ[variants.SEED_VARIABLE] = "not a seed"
    assert variants.current_seed() == "" and variants.draw("w2-data", DATA) == default
    assert variants.every_variant(DATA)[0] == default and len(variants.every_variant(DATA)) == 6


def test_a_pinned_seed_wins_over_the_environment():
    """Does the grader's pinned seed decide, whatever the notebook put in its environment?"""
    alice, bob = seed_of("alice"), seed_of("bob")
    os.environ[variants.SEED_VARIABLE] = bob
    assert variants.current_seed() == bob
    variants.pin(alice)
    assert variants.current_seed() == alice
    variants.pin("")
    assert variants.draw("w2-data", DATA) == variants.every_variant(DATA)[0]


@pytest.mark.parametrize(
    ("declaration", "words"),
    [
        ({}, "mapping"),
        ({"minutes": []}, "at least one"),
        ({"minutes": "90"}, "list of values"),
        ({"2x": [1]}, "identifier"),
        ({"m": [None]}, "not a number"),
        ({"rate": [{"up": 1}, {"down": 2}]}, "same keys"),
        ({"up": [1], "rate": [{"up": 1}]}, "given twice"),
        ({f"p{n}": list(range(10)) for n in range(5)}, "combinations"),
    ],
)
def test_a_bad_declaration_is_refused_with_what_is_wrong(declaration, words):
    """Is each mistake in a declaration said, naming the item?"""
    with pytest.raises(variants.VariantError, match=words) as refused:
        variants.draw("w2-data", declaration, seed_of("alice"))
    assert "w2-data" in str(refused.value)


def test_fill_replaces_declared_names_only_in_the_language():
    """Are {minutes} and {up} filled (French digits) while LaTeX braces stay as written?"""
    text = r"{minutes} min at {up} kbps, $\frac{a}{b}$ {other}"
    assert variants.fill(text, {"minutes": 90, "up": 1000}) == (
        r"90 min at 1,000 kbps, $\frac{a}{b}$ {other}"
    )
    assert variants.fill("{x}", {"x": 2.5}, "fr") == "2,5"
    assert variants.fill("{x}", {"x": 1000}, "fr") == "1\u202f000"


def test_the_secret_is_made_once_private_and_refused_when_others_can_read_it(tmp_path):
    """Made 600 with O_EXCL, read back the same, refused once group or others may read it."""
    first = variants.load_secret(tmp_path, create=True)
    assert variants.load_secret(tmp_path, create=True) == first == variants.load_secret(tmp_path)
    path = tmp_path / variants.SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o640)  # its group may read it (a Kubernetes Secret for the hub's group)
    assert variants.load_secret(tmp_path) == first
    path.chmod(0o644)
    with pytest.raises(variants.VariantError, match="chmod 600"):
        variants.load_secret(tmp_path)
    with pytest.raises(variants.VariantError, match="no variants secret"):
        variants.load_secret(tmp_path / "elsewhere")
    path.unlink()
    os.symlink(tmp_path / "target", path)
    (tmp_path / "target").write_text("00" * 32)
    (tmp_path / "target").chmod(0o600)
    with pytest.raises(variants.VariantError, match="cannot read"):
        variants.load_secret(tmp_path)  # a link is never followed


def test_the_grader_finds_the_spawners_seed_from_the_student_id(tmp_path):
    """Is the seed of student id ``at-alice`` the one the spawner gives hub user ``alice``?"""
    secret = variants.load_secret(tmp_path, create=True)
    cohort = variants.CohortVariants.load(tmp_path, "spring", "at-")
    expected = variants.trainee_seed(variants.cohort_key(secret, "spring"), "alice")
    assert cohort.seed_of_student("at-alice") == expected
    assert "key" not in repr(cohort) and secret.hex() not in repr(cohort)


# -- the widgets and the hidden tests ------------------------------------------------------------
def test_the_widget_shows_the_trainees_numbers_and_formgrader_reads_them(tmp_path):
    """Does the question carry the trainee's numbers, and the answer text name them?"""
    alice = seed_of("alice")
    os.environ[variants.SEED_VARIABLE] = alice
    drawn = variants.draw("w2-data", DATA, alice)
    widget = NumericAnswer(
        "w2-data",
        "MB in {minutes} minutes at {up} up and {down} down?",
        unit="MB",
        variants=DATA,
        store=AnswerStore(tmp_path),
    )
    assert widget.variant == drawn
    assert widget.question == "MB in {minutes} minutes at {up:,} up and {down} down?".format(
        **drawn
    )
    widget.value = megabytes(drawn)
    text = widget.answer_text()["text/plain"]
    assert f"minutes = {drawn['minutes']}" in text and widget.question in text
    assert f"minutes = {drawn['minutes']}" in widget._repr_mimebundle_()["text/html"]


def test_a_choice_widget_fills_its_options_and_a_formative_key_from_the_parameters(tmp_path):
    """Does a formative choice take its key as a function of the numbers drawn?"""
    declaration = {"budget": [500, 2000]}
    os.environ[variants.SEED_VARIABLE] = next(
        s for s in (seed_of(f"t{n}") for n in range(50))
        if variants.draw("w2-plan", declaration, s) == {"budget": 2000}
    )  # fmt: skip
    widget = MultipleChoice(
        "w2-plan",
        "With {budget} MB a month?",
        {"a": "Video ({budget} MB is enough)", "b": "Voice only"},
        correct=lambda p: "a" if p["budget"] >= 1000 else "b",
        variants=declaration,
        store=AnswerStore(tmp_path),
    )
    assert widget.options[0][1] == "Video (2,000 MB is enough)" and widget.correct == ["a"]


def test_each_trainees_right_answer_passes_and_anothers_fails_naming_the_numbers(
    tmp_path, monkeypatch, capsys
):
    """Graded with each trainee's seed: their own right answer passes, a classmate's fails."""
    monkeypatch.chdir(tmp_path)
    seeds = [seed_of(f"t{n}") for n in range(30)]
    alice = seeds[0]
    bob = next(s for s in seeds if megabytes(variants.draw("w2-data", DATA, s)) != megabytes(
        variants.draw("w2-data", DATA, alice)))  # fmt: skip
    answer_of = {s: megabytes(variants.draw("w2-data", DATA, s)) for s in (alice, bob)}

    def grade(seed, value):
        AnswerStore(tmp_path).save("w2-data", value, "numeric")
        variants.pin(seed)
        grading.check_numeric(
            "w2-data", megabytes, 25, unit="MB", variants=DATA,
            explanation="({up} + {down}) kbps × {minutes} min", language="en",
        )  # fmt: skip

    grade(alice, answer_of[alice])
    assert "Your numbers: minutes = " in capsys.readouterr().out
    grade(bob, answer_of[bob])
    with pytest.raises(AssertionError) as failed:
        grade(bob, answer_of[alice])
    params = variants.draw("w2-data", DATA, bob)
    message = str(failed.value)
    assert f"Your numbers: minutes = {params['minutes']}" in message
    assert f"({params['up']:,} + {params['down']}) kbps × {params['minutes']} min" in message
    # The environment a notebook sets changes nothing once the grader pinned the seed.
    os.environ[variants.SEED_VARIABLE] = alice
    with pytest.raises(AssertionError):
        grade(bob, answer_of[alice])


def test_a_widget_with_variants_needs_an_id():
    """A draw is per item: a widget without an id cannot have variants."""
    with pytest.raises(Exception, match="needs an id"):
        NumericAnswer(None, "{minutes}?", variants=DATA)


# -- item analysis ------------------------------------------------------------------------------
def test_item_analysis_pools_the_variants_of_an_item_and_logs_each_trainees():
    """One report row per item whatever the variants, computed over all of them; each logged."""
    from atelier.grading.itemanalysis import analyse, graded_variants

    test = "check_numeric('w2-data', f, 25, variants=" + repr(DATA) + ")"
    graded = {"cells": [
        {"cell_type": "code", "source": test, "metadata": {"nbgrader": {"grade": True}}},
        {"cell_type": "code", "source": "check_choice('w2-plan', 'c')",
         "metadata": {"nbgrader": {"grade": True}}},
        {"cell_type": "code", "source": test, "metadata": {}},  # not a test: not read
    ]}  # fmt: skip
    alice = seed_of("alice")
    assert graded_variants(graded, alice) == {"w2-data": variants.draw("w2-data", DATA, alice)}
    assert graded_variants(graded, "") == {"w2-data": variants.every_variant(DATA)[0]}
    attempts = []
    for n in range(12):
        variant = variants.every_variant(DATA)[n % 6]
        score = 2.0 if n % 3 else 0.0  # 8 of 12 right, spread over every variant
        attempts.append({
            "student": f"t{n}", "assignment": "low-bandwidth-planner-en", "received": f"{n:02d}",
            "items": {
                "test-w2-data": {"score": score, "max": 2.0, "widget": "w2-data",
                                 "answer": None, "variant": variant},
                "test-w2-afford": {"score": float(n % 2), "max": 1.0, "widget": "w2-afford",
                                   "answer": None},
            },
        })  # fmt: skip
    reports = {r.item: r for r in analyse(attempts)}
    assert set(reports) == {"test-w2-data", "test-w2-afford"}
    pooled = reports["test-w2-data"]
    assert pooled.n == 12 and pooled.facility == pytest.approx(100 * 8 / 12)
    assert {len({str(a["items"]["test-w2-data"]["variant"]) for a in attempts})} == {6}


# -- workbook 02 and its answer sets ------------------------------------------------------------
WORKBOOK_02 = WORKBOOKS / "02-low-bandwidth-planner"


def _cells(language: str):
    return nbformat.read(WORKBOOK_02 / f"low-bandwidth-planner.{language}.ipynb", 4).cells


@pytest.mark.parametrize("language", ["en", "fr"])
def test_workbook_02_grades_every_variant_on_its_own_numbers(tmp_path, monkeypatch, language):
    """Does the notebook's own hidden test take each variant's answer, and refuse the default's?

    The answer sets are written for the default variant; this derives every other one's.
    """
    from atelier.widgets.items import code_variants

    monkeypatch.chdir(tmp_path)
    cells = _cells(language)
    declaration = code_variants([c.source for c in cells if c.cell_type == "code"])["w2-data"]
    test = next(c for c in cells if c.get("id") == "test-w2-data").source
    every = variants.every_variant(declaration)
    default = megabytes(every[0])
    assert len(every) == 6 and default == 1080  # what the answer sets and the prose say
    seeds = {}
    for n in range(500):
        drawn = variants.draw("w2-data", declaration, seed_of(f"t{n}"))
        seeds.setdefault(tuple(drawn.items()), seed_of(f"t{n}"))
    assert len(seeds) == len(every)
    for params in every:
        variants.pin(seeds[tuple(params.items())])
        AnswerStore(tmp_path).save("w2-data", megabytes(params), "numeric")
        exec(test, {})
        if abs(megabytes(params) - default) > 25:
            AnswerStore(tmp_path).save("w2-data", default, "numeric")
            with pytest.raises(AssertionError) as failed:
                exec(test, {})
            assert str(params["minutes"]) in str(failed.value)


def test_every_answer_set_names_the_default_variant_of_its_items():
    """An answer set's ``variants`` are the default ones (what the check and CI grade with)."""
    import json

    from atelier.widgets.items import code_variants

    checked = 0
    for path in sorted(WORKBOOKS.glob("*/answers/*.json")):
        answer_set = json.loads(path.read_text("utf-8"))
        notebook = path.parent.parent / answer_set["notebook"]
        cells = nbformat.read(notebook, 4).cells
        declared = code_variants([c.source for c in cells if c.cell_type == "code"])
        for item, declaration in declared.items():
            assert answer_set.get("variants", {}).get(item) == variants.draw(item, declaration, "")
            checked += 1
    assert checked >= 4  # workbook 02's four sets


def test_the_check_refuses_a_test_graded_on_other_variants_and_a_set_for_another_variant(
    tmp_path,
):
    """Does ``atelier check`` name a test graded on other variants, and a set for another one?"""
    import shutil

    from atelier.authoring.check import pipeline
    from atelier.authoring.check.options import CheckOptions

    folder = tmp_path / WORKBOOK_02.name
    shutil.copytree(WORKBOOK_02, folder)
    static = CheckOptions(execute=False, voila=False, content="off")
    assert not pipeline.check([folder], static).errors
    for language in ("en", "fr"):  # graded cells stay alike in both languages
        path = folder / f"low-bandwidth-planner.{language}.ipynb"
        nb = nbformat.read(path, 4)
        test = next(c for c in nb.cells if c.get("id") == "test-w2-data")
        test.source = test.source.replace("[90, 60, 75]", "[90, 60]")
        nbformat.write(nb, path)
    right = folder / "answers" / "low-bandwidth-planner.en.right.json"
    right.write_text(right.read_text().replace('"minutes": 90', '"minutes": 60'))
    report = pipeline.check([folder], static)
    lines = "\n".join(report.lines())
    assert {p.code for p in report.errors} == {"variants"}, lines
    assert "cell 12: the test of w2-data grades with variants=" in lines
    assert "not the default variant" in lines and "en.right.json" in lines


def test_on_kubernetes_the_hub_pod_gets_the_secret_and_a_trainee_pod_only_their_seed(tmp_path):
    """Do the chart's values carry the secret for the hub, and a trainee's pod only their seed?"""
    import yaml

    from atelier.accounts import save_people
    from atelier.hub_config.kubernetes import kube, kubehub
    from atelier.roster import parse_roster
    from atelier.settings import load_settings

    state = tmp_path / "state"
    state.mkdir()
    roster = (
        "username,full name,email,institution,country,language,role,cohort\n"
        "alice,Alice,alice@example.org,U,KE,en,trainee,x\n"
        "fiona,Fiona,fiona@example.org,U,SN,en,facilitator,x\n"
    )
    people = {p.username: p for p in parse_roster(roster)}
    save_people(state, people)
    settings = tmp_path / "settings.yaml"
    settings.write_text(yaml.safe_dump({
        "hub": {"state_dir": str(state)},
        "database": {"url": "postgresql://atelier:pw@db.example.org/atelier"},
        "kubernetes": {"host": "a.example.org", "singleuser_image": "r/t:1",
                       "workbooks_url": "https://g/w.git"},
    }))  # fmt: skip
    shipped = kube.render_values(load_settings(settings))["hub"]["extraFiles"]
    secret = variants.load_secret(state)
    entry = shipped["atelier-variants-secret"]
    assert entry["stringData"].strip() == secret.hex() and entry["mode"] == 0o440
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    (mounted / variants.SECRET_FILE).write_text(entry["stringData"])
    (mounted / variants.SECRET_FILE).chmod(0o440)
    environ = {"ATELIER_STATE_DIR": str(mounted)}
    pod = kubehub.pod_settings(people["alice"], environ)["environment"]
    assert pod[variants.SEED_VARIABLE] == variants.trainee_seed(
        variants.cohort_key(secret, "x"), "alice"
    )
    assert secret.hex() not in str(pod)
    assert (
        variants.SEED_VARIABLE not in kubehub.pod_settings(people["fiona"], environ)["environment"]
    )
