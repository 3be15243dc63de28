"""The gate every workbook passes (``atelier check``), one concern per module.

Rule: the verb is ``authoring/checkapp.py``; here :mod:`.pipeline` holds the order of the steps and
the report, :mod:`.static` the checks of stored notebooks, folders and workbooks roots,
:mod:`.content` the content rules (what a workbook teaches and assesses) with :mod:`.prose` for
those that read its prose, :mod:`.kernels` executing notebooks in forked kernels, :mod:`.voila`
rendering apps with Voila, and :mod:`.options` the limits and switches every step reads. Nothing is
imported here: import the module that does the job.
"""
