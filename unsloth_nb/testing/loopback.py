"""The environment that keeps tests and benchmarks on this machine.

Every endpoint the project or its libraries could call is pointed at a closed loopback
port, and the libraries' own telemetry is off, so a setting someone forgot fails at
once instead of reaching the internet. Tests and benchmarks that need a server (the
RunPod emulator, the loopback Hub) start it and override the one variable it answers.
"""

from __future__ import annotations

#: Nothing listens here: a request that was not pointed at a local server fails fast.
CLOSED_LOOPBACK = "http://127.0.0.1:9"

LOOPBACK_ENV = {
    "HF_ENDPOINT": CLOSED_LOOPBACK,
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "RUNPOD_API_BASE_URL": CLOSED_LOOPBACK,
    "UNSLOTH_NB_RUNPOD_PROXY_TEMPLATE": CLOSED_LOOPBACK + "/{pod_id}-{port}",
    "OPENAI_BASE_URL": CLOSED_LOOPBACK + "/v1",
    "ANTHROPIC_BASE_URL": CLOSED_LOOPBACK,
    "AWS_ENDPOINT_URL": CLOSED_LOOPBACK,  # boto3: S3 (and every AWS service) on the closed port unless a test moves it
    "AWS_EC2_METADATA_DISABLED": "true",  # no instance-metadata credential lookup
    "AWS_CONFIG_FILE": "/nonexistent/unsloth-nb/aws-config",  # the user's profiles are not read by tests
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/unsloth-nb/aws-credentials",
    "UNSLOTH_DISABLE_STATISTICS": "1",
    "WANDB_DISABLED": "true",
    "DO_NOT_TRACK": "1",
}
