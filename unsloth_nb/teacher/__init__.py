"""The teacher: a model (Claude by default) improves answers and rewords questions before training (issue 13).

:func:`enhance` is the standalone entry (``unsloth-nb enhance``, ``unsloth_nb.enhance``; :mod:`.standalone`); the ``enhance`` phase
(:mod:`unsloth_nb.phases.enhance`) runs the same code as a job's first phase. Nothing here imports an SDK until a
request is sent.
"""

from unsloth_nb.teacher.run import EnhanceOutcome, TeacherError, enhance_rows

__all__ = ["EnhanceOutcome", "TeacherError", "enhance_rows"]
