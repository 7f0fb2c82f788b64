"""Planning: how big a model is, how much memory it needs, where it fits, which GPUs, what it costs, and when a rental asks first.

Nothing here starts anything: the plan is a pure function of the config, the data sample and the hardware.
"""
