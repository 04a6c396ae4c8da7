"""darkgan.app: the interactive web app (``darkgan app``; docs/app.md).

``state`` (pure logic: settings JSON, validation, uploads, pad, pictures), ``controller``
(:class:`~darkgan.app.controller.Studio`: one loaded generator and every action), ``app`` (the
Gradio page and ``serve``), ``cli`` (the command). Gradio is imported only by ``app``.
"""
