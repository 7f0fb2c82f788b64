"""A job's phases, each one module behind the interface in :mod:`unsloth_nb.phases.base`."""
