"""TrainConfig and its sections: one validated source of truth for a job.

One module per section (``sections``, ``runpod``, ``judge``, ``generate``), the schema machinery in ``schema``, files in
``files``. A new section is a module with a dataclass of :func:`knob` fields plus one field of TrainConfig.
"""

from __future__ import annotations

from unsloth_nb.config.files import (
    deep_update,
    expand_dotted,
    load_config_file,
    parse_yaml,
)
from unsloth_nb.config.generate import (
    GenerateConfig,
)
from unsloth_nb.config.judge import (
    DEFAULT_JUDGE_MODEL,
    JUDGE_PROVIDERS,
    JudgeConfig,
)
from unsloth_nb.config.runpod import (
    RunPodConfig,
)
from unsloth_nb.config.schema import (
    DEFAULT_TARGET_MODULES,
    SECRET_KEY_PATTERN,
    FieldSpec,
    Placement,
    coerce,
    field_specs,
    flag_of,
    knob,
)
from unsloth_nb.config.sections import (
    DatasetConfig,
    HubConfig,
    LoraConfig,
    ModelConfig,
    SaveConfig,
    TrainArgs,
)
from unsloth_nb.config.serverless import (
    ServerlessConfig,
)
from unsloth_nb.config.teacher import (
    DEFAULT_TEACHER_MODEL,
    TEACHER_OPERATIONS,
    TeacherConfig,
)
from unsloth_nb.config.train_config import (
    TrainConfig,
)

__all__ = [
    "DEFAULT_JUDGE_MODEL",
    "DEFAULT_TARGET_MODULES",
    "DEFAULT_TEACHER_MODEL",
    "JUDGE_PROVIDERS",
    "SECRET_KEY_PATTERN",
    "TEACHER_OPERATIONS",
    "DatasetConfig",
    "FieldSpec",
    "GenerateConfig",
    "HubConfig",
    "JudgeConfig",
    "LoraConfig",
    "ModelConfig",
    "Placement",
    "RunPodConfig",
    "SaveConfig",
    "ServerlessConfig",
    "TeacherConfig",
    "TrainArgs",
    "TrainConfig",
    "coerce",
    "deep_update",
    "expand_dotted",
    "field_specs",
    "flag_of",
    "knob",
    "load_config_file",
    "parse_yaml",
]
