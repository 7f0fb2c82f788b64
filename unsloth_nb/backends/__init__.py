"""Where training runs: ``local`` (a thread in this process) or ``runpod`` (a GPU pod)."""
