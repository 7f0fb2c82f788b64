"""Running a job: the lifecycle vocabulary, the event log, the job folder, the Job handle and its controller.

A job's state and events live here; backends and views depend on this package, never the other way round.
(The package is not called ``jobs`` because ``unsloth_nb.jobs()`` is the public call that lists jobs.)
"""
