"""Accessibility audits in Chromium with axe-core, for the browser tests.

axe-core comes from npm (``tests/run.sh`` installs a fixed version into the prefix); its browser
build is injected into the page under test. A test asserts that no violation is serious or
critical; moderate and minor ones (landmarks, say) are not failures.
"""

from __future__ import annotations

from harness import PREFIX

#: axe-core's browser build, installed by ``tests/run.sh`` (``npm install --prefix``).
AXE = PREFIX / "test-node" / "node_modules" / "axe-core" / "axe.min.js"


def serious_violations(page, *include: str, rules_off: tuple[str, ...] = ()) -> list[str]:
    """axe-core's serious and critical violations on ``page``, or only inside ``include``."""
    if not page.evaluate("() => !!window.axe"):
        page.add_script_tag(path=str(AXE))
    violations = page.evaluate(
        """async ([include, rulesOff]) => {
            const context = include.length ? {include: include} : document;
            const rules = Object.fromEntries(rulesOff.map(id => [id, {enabled: false}]));
            const result = await axe.run(context, {resultTypes: ['violations'], rules});
            return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 3).map(n => n.html.slice(0, 160))}));
        }""",
        [list(include), list(rules_off)],
    )
    return [
        f"{v['impact']}: {v['id']} ({v['help']}) {v['nodes']}"
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]
