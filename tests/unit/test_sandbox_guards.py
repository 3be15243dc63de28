"""The in-sandbox guards, one by one, without a sandbox (the server tier runs the cheats whole)."""

from __future__ import annotations

import contextlib
import itertools
import operator
import os
import sys
import types

import pytest

from atelier.grading.sandbox import kernel as sandbox_kernel
from atelier.grading.sandbox.kernel import (
    _capture,
    _index,
    _restore,
    _single_threaded,
    _unchanged,
    compile_test,
)

pytestmark = pytest.mark.unit

#: The pristine tools the harness binds before trainee code runs (see ``run_notebook``).
CHECKS = (type, str, operator.is_, operator.getitem, map, all, itertools.repeat, itertools.chain,
          len, sum, KeyError, operator.attrgetter("__defaults__"),
          operator.attrgetter("__kwdefaults__"))  # fmt: skip


def restore(parts, tables, graveyard) -> bool:
    """``_restore`` as the harness calls it, with no shell classes."""
    return _restore(parts, (), tables, graveyard, _index(parts, ()), CHECKS, types.ModuleType,
                    type.__setattr__, type.__delattr__, type.__dict__["__dict__"].__get__,
                    object())  # fmt: skip


def test_the_harness_loop_holds_no_rewritable_closure_cells():
    """Is every value the loop uses a plain local (a closure's cells can be rewritten from code)?"""
    code = sandbox_kernel.run_notebook.__code__
    assert code.co_cellvars == () and code.co_freevars == ()


def test_restore_puts_back_names_and_keeps_what_it_removes_alive():
    """Are a replaced helper, a new name and a changed default put back, nothing freed meanwhile?"""
    module = types.ModuleType("atelier_guard_probe")
    exec("def check(value, tolerance=0.0):\n    assert value <= tolerance\n", vars(module))
    sys.modules[module.__name__] = module
    try:
        parts = _capture([module.__name__])
        original = module.check
        freed = []

        class Patch:
            def __call__(self, *args):
                return None

            def __del__(self):
                freed.append(True)

        module.check = Patch()
        module.extra = Patch()
        original.__defaults__ = (1e9,)
        sys.modules[module.__name__] = types.ModuleType("fake")
        graveyard = []
        tables = ((sys.modules, ((module.__name__, module),), (module.__name__,), (module,)),)
        done = restore(parts, tables, graveyard)
        assert done
        assert module.check is original and original.__defaults__ == (0.0,)
        assert not hasattr(module, "extra") and sys.modules[module.__name__] is module
        assert freed == []  # the patches' finalizers have not run yet
        del graveyard
        assert freed == [True, True]
    finally:
        sys.modules.pop(module.__name__, None)


def test_after_a_restore_the_quick_check_finds_everything_as_it_was():
    """Are changed keyword defaults, class members and globals put back as the same objects?

    So that the next test cell's check passes without another restore.
    """
    module = types.ModuleType("atelier_guard_again")
    exec(
        "def check(value, *, tolerance=0.0):\n    return value\n"
        "class Marker:\n    def judge(self):\n        return True\n"
        "LANGUAGE = 'en'\n",
        vars(module),
    )
    sys.modules[module.__name__] = module
    try:
        parts = _capture([module.__name__])
        index = _index(parts, ())
        tables = ((sys.modules, ((module.__name__, module),), (module.__name__,), (module,)),)
        kwdict, judge = module.check.__kwdefaults__, module.Marker.judge
        module.check.__kwdefaults__["tolerance"] = 1e9
        module.Marker.judge = lambda self: False
        module.LANGUAGE = "fr"
        assert _unchanged(index, tables, CHECKS) is False
        graveyard = []
        assert restore(parts, tables, graveyard)
        assert module.check.__kwdefaults__ is kwdict and kwdict == {"tolerance": 0.0}
        assert module.Marker.judge is judge and module.LANGUAGE == "en"
        assert _unchanged(index, tables, CHECKS) is True
        # A second restore finds nothing to do: nothing more is taken out.
        again = []
        assert restore(parts, tables, again)
        assert [value for value in again if value is not kwdict] == []
    finally:
        sys.modules.pop(module.__name__, None)


def test_restore_leaves_untouched_namespaces_alone():
    """Is only the module that changed rewritten (not every protected module's namespace)?"""
    first, second = types.ModuleType("atelier_guard_one"), types.ModuleType("atelier_guard_two")
    for module in (first, second):
        exec("VALUE = 1\n", vars(module))
        sys.modules[module.__name__] = module
    try:
        parts = _capture([first.__name__, second.__name__])
        first.VALUE = 2
        graveyard = []
        assert restore(parts, (), graveyard)
        assert first.VALUE == 1 and second.VALUE == 1
        copies = [entry for entry in graveyard if isinstance(entry, dict)]
        assert [copy.get("__name__") for copy in copies] == [first.__name__]
    finally:
        sys.modules.pop(first.__name__, None)
        sys.modules.pop(second.__name__, None)


def test_a_keyword_default_dict_with_a_shadowing_key_is_refused_before_any_lookup():
    """Does a non-string key in a function's keyword defaults make the checks fail closed?

    Its ``__eq__`` is never called.
    """
    called = []

    class Shadow:
        armed = False

        def __hash__(self):
            return hash("tolerance")

        def __eq__(self, other):
            # Unequal while being added (so it is a key of its own), then equal to everything.
            called.append(self.armed)
            return self.armed

    module = types.ModuleType("atelier_guard_kw")
    exec("def check(value, *, tolerance=0.0):\n    return value\n", vars(module))
    sys.modules[module.__name__] = module
    try:
        parts = _capture([module.__name__])
        index = _index(parts, ())
        shadow = Shadow()
        module.check.__kwdefaults__[shadow] = 1
        assert len(module.check.__kwdefaults__) == 2
        shadow.armed = True
        assert _unchanged(index, (), CHECKS) is None
        assert restore(parts, (), []) is False
        assert True not in called
    finally:
        sys.modules.pop(module.__name__, None)


def test_restore_refuses_a_name_that_is_not_a_string():
    """Is a key that could shadow a name by its own __eq__ refused rather than looked up?"""

    class Shadow:
        def __hash__(self):
            return hash("check")

        def __eq__(self, other):
            return True

    parts = _capture([])
    table = {Shadow(): 2}
    done = restore(parts, ((table, (), (), ()),), [])
    assert not done


def test_thread_count_fails_closed_on_a_replaced_descriptor(tmp_path):
    """Does the thread guard answer "not single-threaded" when its descriptor is another file?"""
    import _thread

    fd = os.open("/proc/self/status", os.O_RDONLY)
    info = os.fstat(fd)
    identity = (info.st_dev, info.st_ino)
    try:
        args = (os.fstat, os.pread, _thread._count)
        assert _single_threaded(fd, identity, *args) is (_thread._count() == 0)
        fake = tmp_path / "status"
        fake.write_text("Threads:\t1\n")
        other = os.open(fake, os.O_RDONLY)
        os.dup2(other, fd)
        os.close(other)
        assert _single_threaded(fd, identity, *args) is False
        os.close(fd)
        assert _single_threaded(fd, identity, *args) is False
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


def test_tests_are_compiled_apart_from_the_shell():
    """Is a test compiled by Python (magics through IPython's defaults), its last value apart?"""
    body, last, imports, error = compile_test("import numpy.testing as npt\nx = 2\nx * 3", "<t>")
    assert error is None and imports == ("numpy.testing",)
    namespace: dict = {}
    exec(body, namespace)
    assert eval(last, namespace) == 6
    body, last, _, error = compile_test("%time y = 1\ny", "<t2>")
    assert error is None and last is not None
    _, _, _, error = compile_test("def broken(:\n", "<t3>")
    assert isinstance(error, SyntaxError)


def test_the_quick_check_sees_any_change_and_any_key_that_is_not_a_string():
    """Does the per-test check (C code only) notice a patch, a new name and a shadowing key?"""
    module = types.ModuleType("atelier_guard_quick")
    exec("def check(value, tolerance=0.0):\n    return value\n", vars(module))
    sys.modules[module.__name__] = module
    try:
        parts = _capture([module.__name__])
        index = _index(parts, ())
        tables = ((sys.modules, (), (module.__name__,), (module,)),)
        checks = CHECKS
        assert _unchanged(index, tables, checks) is True
        module.check.__defaults__ = (1e9,)
        assert _unchanged(index, tables, checks) is False
        module.check.__defaults__ = parts[1][0][1]
        module.extra = 1
        assert _unchanged(index, tables, checks) is False
        del module.extra
        assert _unchanged(index, tables, checks) is True
        vars(module)[("not", "a", "string")] = 1
        assert _unchanged(index, tables, checks) is None
    finally:
        sys.modules.pop(module.__name__, None)


def test_what_tests_import_is_imported_early_but_never_from_the_submission(tmp_path, monkeypatch):
    """Are the tests' imports loaded before any trainee code, but never the submission's files?"""
    from atelier.grading.sandbox.kernel import _import_early

    package = tmp_path / "atelier_helper_probe"
    package.mkdir()
    (package / "__init__.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').close()\n")
    (package / "sub.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = _import_early(["atelier_helper_probe.sub", "json.decoder"], str(tmp_path))
    assert "json.decoder" in loaded and "json" in loaded
    assert "atelier_helper_probe" not in sys.modules and not (tmp_path / "ran").exists()
