"""The trainee's path on their own server: home page, workbook view, submit and feedback (issue 17).

A Jupyter server extension (:mod:`.extension`) that every trainee's server loads; each page or
endpoint is a module exposing ``HANDLERS`` (``home``: "My workbooks"; ``workbook``: the workbook
view; ``submit``: submit and feedback).

Rule: everything here runs in the trainee's own Jupyter server, as the trainee, behind the hub's
OAuth (only that trainee), and reads only the trainee's files and what the hardened exchange lets
them read. Pages come from ``templates/`` through :mod:`atelier.pages`, words from
``locales/<language>.json`` through :mod:`atelier.languages`; no page shows code.
"""
