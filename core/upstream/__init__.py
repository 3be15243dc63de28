"""Every patch of another project's private internals, one module per upstream project.

Rule: a room that needs to reach into another project's private names (a module global, a private
attribute, a private method) does it only through a small named function here. Each module says at
its top which upstream versions it was written against, what private thing it relies on and why;
``tests/unit/test_upstream_canaries.py`` fails, naming the patch, when that private thing changes;
``docs/upstream-patches.md`` says what upstream change would let each patch go. These modules may
import the upstream project they patch; they import no Atelier room. The rooms decide when a patch
is applied.
"""
