"""The trainee's own path on their server: workbooks as pages, without code (issue 17).

A Jupyter server extension (:mod:`.extension`) that every trainee's server loads; each page or
endpoint is a module exposing ``HANDLERS`` (``workbook``: the workbook view). It runs as the trainee
and reads only their files.
"""
