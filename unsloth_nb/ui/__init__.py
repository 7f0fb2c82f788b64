"""Notebook and terminal views of jobs: they read events and never reach into a backend."""
